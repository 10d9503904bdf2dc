// Metadata writes through dynamics-web-api: createGlobalOptionSet, createEntity, createAttribute,
// createRelationship, then their updates (updateEntity, updateAttribute, updateRelationship,
// updateGlobalOptionSet) and deletes (deleteRecord on EntityDefinitions, deleteRelationship,
// deleteGlobalOptionSet, raw DELETE on Attributes and Keys); the schema is live at once (CRUD,
// $metadata) and survives a restart.
// Wire facts: shared/reference/dataverse-webapi.md §9.2.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, GUID_RE, assertODataError } from "./helpers.mjs";

const label = (text) => ({
  "@odata.type": "Microsoft.Dynamics.CRM.Label",
  LocalizedLabels: [{ "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", Label: text, LanguageCode: 1033 }],
});
const required = (v = "None") => ({ Value: v, CanBeChanged: true, ManagedPropertyLogicalName: "canmodifyrequirementlevelsettings" });

let server;
let dwa;

before(async () => {
  server = await startServer();
  dwa = await server.dwa();
});

after(async () => {
  await server?.cleanup();
});

describe("metadata writes", () => {
  it("builds a schema without a schema file and uses it at once", async () => {
    await dwa.createGlobalOptionSet({
      data: {
        "@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata",
        Name: "new_tier",
        DisplayName: label("Tier"),
        OptionSetType: "Picklist",
        Options: [{ Value: 100000000, Label: label("Bronze") }, { Value: 100000001, Label: label("Gold") }],
      },
    });
    const tableId = await dwa.createEntity({
      data: {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
        SchemaName: "new_BankAccount",
        DisplayName: label("Bank Account"),
        DisplayCollectionName: label("Bank Accounts"),
        Description: label("An account at a bank"),
        OwnershipType: "UserOwned",
        IsActivity: false,
        HasNotes: false,
        HasActivities: false,
        Attributes: [
          {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            AttributeType: "String",
            AttributeTypeName: { Value: "StringType" },
            SchemaName: "new_Name",
            IsPrimaryName: true,
            MaxLength: 100,
            FormatName: { Value: "Text" },
            RequiredLevel: required("ApplicationRequired"),
            DisplayName: label("Name"),
          },
          {
            "@odata.type": "Microsoft.Dynamics.CRM.MoneyAttributeMetadata",
            SchemaName: "new_Balance",
            Precision: 2,
            RequiredLevel: required(),
            DisplayName: label("Balance"),
          },
        ],
      },
    });
    assert.match(tableId, GUID_RE);
    const def = await dwa.retrieveEntity({ key: "LogicalName='new_bankaccount'", select: ["SchemaName", "EntitySetName", "PrimaryNameAttribute"] });
    assert.equal(def.SchemaName, "new_BankAccount");
    assert.equal(def.EntitySetName, "new_bankaccounts");
    assert.equal(def.PrimaryNameAttribute, "new_name");
    assert.equal(def.MetadataId, tableId);

    await dwa.createAttribute({
      entityKey: tableId,
      data: {
        "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
        SchemaName: "new_Tier",
        RequiredLevel: required(),
        DisplayName: label("Tier"),
        "GlobalOptionSet@odata.bind": "/GlobalOptionSetDefinitions(Name='new_tier')",
      },
    });
    await dwa.createAttribute({
      entityKey: "LogicalName='new_bankaccount'",
      data: {
        "@odata.type": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata",
        SchemaName: "new_OpenedOn",
        DateTimeBehavior: { Value: "DateOnly" },
        Format: "DateOnly",
        RequiredLevel: required(),
        DisplayName: label("Opened on"),
      },
    });
    await dwa.createRelationship({
      data: {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        SchemaName: "new_account_new_bankaccount",
        ReferencedEntity: "account",
        ReferencedAttribute: "accountid",
        ReferencingEntity: "new_bankaccount",
        CascadeConfiguration: { Delete: "Cascade" },
        Lookup: {
          "@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
          AttributeType: "Lookup",
          SchemaName: "new_AccountId",
          DisplayName: label("Account"),
          RequiredLevel: required(),
        },
      },
    });
    await dwa.createRelationship({
      data: {
        "@odata.type": "Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata",
        SchemaName: "new_bankaccount_contact",
        Entity1LogicalName: "new_bankaccount",
        Entity2LogicalName: "contact",
        IntersectEntityName: "new_bankaccount_contact",
      },
    });

    // Live without a restart: $metadata, CRUD with the new column types, the lookup and the N:N.
    const csdl = await dwa.retrieveCsdlMetadata();
    assert.match(csdl, /EntityType Name="new_bankaccount"/);
    assert.match(csdl, /Name="_new_accountid_value"/);
    const account = await dwa.create({ collection: "accounts", data: { name: "Bank owner" } });
    const contact = await dwa.create({ collection: "contacts", data: { lastname: "Holder" } });
    const id = await dwa.create({
      collection: "new_bankaccounts",
      data: { new_name: "Checking", new_balance: 1200.5, new_tier: 100000001, new_openedon: "2024-03-01", "new_accountid@odata.bind": `/accounts(${account})` },
    });
    await dwa.associate({ collection: "new_bankaccounts", primaryKey: id, relationshipName: "new_bankaccount_contact", relatedCollection: "contacts", relatedKey: contact });
    const got = await dwa.retrieve({
      collection: "new_bankaccounts",
      key: id,
      select: ["new_name", "new_balance", "new_tier", "new_openedon", "_new_accountid_value"],
      expand: [{ property: "new_bankaccount_contact", select: ["lastname"] }],
      includeAnnotations: "OData.Community.Display.V1.FormattedValue",
    });
    assert.equal(got.new_name, "Checking");
    assert.equal(got.new_balance, 1200.5);
    assert.equal(got["new_tier@OData.Community.Display.V1.FormattedValue"], "Gold");
    assert.equal(got.new_openedon, "2024-03-01");
    assert.equal(got._new_accountid_value, account);
    assert.equal(got.new_bankaccount_contact[0].lastname, "Holder");
    const fromAccount = await server.api("GET", `accounts(${account})/new_account_new_bankaccount?$select=new_name`);
    assert.equal(fromAccount.json.value[0].new_name, "Checking");
    await dwa.deleteRecord({ collection: "accounts", key: account }); // cascade from the relationship
    assertODataError(await server.api("GET", `new_bankaccounts(${id})`), { status: 404 });

    // Durable: still there after a restart.
    await server.restart();
    dwa = await server.dwa();
    const after = await dwa.retrieveEntity({ key: tableId, select: ["LogicalName"] });
    assert.equal(after.LogicalName, "new_bankaccount");
    const attrs = await server.api("GET", `EntityDefinitions(LogicalName='new_bankaccount')/Attributes?$select=LogicalName`);
    const names = attrs.json.value.map((a) => a.LogicalName);
    for (const n of ["new_name", "new_balance", "new_tier", "new_openedon", "new_accountid"]) assert.ok(names.includes(n), n);
  });

  it("refuses invalid or duplicate definitions with 4xx and changes nothing", async () => {
    const bad = [
      ["EntityDefinitions", { SchemaName: "NoPrefix", Attributes: [] }, 400],
      ["EntityDefinitions", { SchemaName: "new_Thing", Attributes: [{ "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata", SchemaName: "new_N" }] }, 400],
      ["EntityDefinitions", { SchemaName: "new_BankAccount", Attributes: [{ "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", SchemaName: "new_Name", IsPrimaryName: true }] }, 412],
      ["EntityDefinitions(LogicalName='account')/Attributes", { "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", SchemaName: "name" }, 400],
      ["EntityDefinitions(LogicalName='account')/Attributes", { "@odata.type": "Microsoft.Dynamics.CRM.WeirdAttributeMetadata", SchemaName: "new_X" }, 400],
      ["EntityDefinitions(LogicalName='nosuch')/Attributes", { "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", SchemaName: "new_X" }, 404],
      ["RelationshipDefinitions", { "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata", SchemaName: "new_r", ReferencedEntity: "nosuch", ReferencingEntity: "contact", Lookup: { SchemaName: "new_NosuchId" } }, 400],
      ["GlobalOptionSetDefinitions", { Name: "new_tier", Options: [{ Value: 1, Label: label("x") }] }, 412],
    ];
    for (const [path, body, status] of bad) {
      const r = await server.api("POST", path, { body });
      assertODataError(r, { status, context: `${path} ${JSON.stringify(body)}` });
    }
    assert.equal((await server.api("GET", "EntityDefinitions(LogicalName='new_thing')")).status, 404);
    assertODataError(await server.api("PATCH", "EntityDefinitions(LogicalName='account')", { body: {} }), { status: 405 });
  });
});

// Updates and deletes: PUT/DELETE on EntityDefinitions, Attributes, Keys, RelationshipDefinitions and
// GlobalOptionSetDefinitions. Each change is live at once ($metadata, EntityDefinitions, CRUD),
// leaves the data of what remains alone, and replays to the same state after a restart.
describe("metadata updates and deletes", () => {
  const CRM = "Microsoft.Dynamics.CRM.";
  const stringAttr = (schema, display, extra = {}) => ({
    "@odata.type": `${CRM}StringAttributeMetadata`,
    SchemaName: schema,
    RequiredLevel: required(),
    DisplayName: label(display),
    ...extra,
  });
  const entity = (schema, display, attributes = []) => ({
    "@odata.type": `${CRM}EntityMetadata`,
    SchemaName: schema,
    DisplayName: label(display),
    DisplayCollectionName: label(`${display}s`),
    OwnershipType: "UserOwned",
    IsActivity: false,
    Attributes: [stringAttr("new_Name", "Name", { IsPrimaryName: true, MaxLength: 100 }), ...attributes],
  });
  const lookupRelationship = (schema, referenced, referencing, lookup, del = "RemoveLink") => ({
    "@odata.type": `${CRM}OneToManyRelationshipMetadata`,
    SchemaName: schema,
    ReferencedEntity: referenced,
    ReferencingEntity: referencing,
    CascadeConfiguration: { Delete: del },
    Lookup: { "@odata.type": `${CRM}LookupAttributeMetadata`, SchemaName: lookup, DisplayName: label(lookup), RequiredLevel: required() },
  });
  const attributeNames = async (table) =>
    (await server.api("GET", `EntityDefinitions(LogicalName='${table}')/Attributes?$select=LogicalName`)).json.value.map((a) => a.LogicalName);
  const csdl = async () => (await server.api("GET", "$metadata")).text;
  // The <EntityType Name="x">…</EntityType> element of the CSDL, or null.
  const entityType = (xml, name) => {
    const m = new RegExp(`<EntityType Name="${name}"[\\s\\S]*?</EntityType>`).exec(xml);
    return m ? m[0] : null;
  };

  it("updates tables, columns, choices and relationships through PUT, live and after a restart", async () => {
    const colorId = await dwa.createGlobalOptionSet({
      data: {
        "@odata.type": `${CRM}OptionSetMetadata`,
        Name: "new_color",
        DisplayName: label("Color"),
        Options: [{ Value: 1, Label: label("Red") }, { Value: 2, Label: label("Green") }],
      },
    });
    const tableId = await dwa.createEntity({
      data: entity("new_Gadget", "Gadget", [
        stringAttr("new_Code", "Code", { MaxLength: 20 }),
        {
          "@odata.type": `${CRM}PicklistAttributeMetadata`,
          SchemaName: "new_Stage",
          RequiredLevel: required(),
          DisplayName: label("Stage"),
          OptionSet: { IsGlobal: false, OptionSetType: "Picklist", Options: [{ Value: 1, Label: label("Plan") }, { Value: 2, Label: label("Build") }] },
        },
        { "@odata.type": `${CRM}IntegerAttributeMetadata`, SchemaName: "new_Count", MinValue: 0, MaxValue: 100, RequiredLevel: required(), DisplayName: label("Count") },
      ]),
    });
    await dwa.createAttribute({
      entityKey: tableId,
      data: {
        "@odata.type": `${CRM}PicklistAttributeMetadata`,
        SchemaName: "new_Color",
        RequiredLevel: required(),
        DisplayName: label("Color"),
        "GlobalOptionSet@odata.bind": "/GlobalOptionSetDefinitions(Name='new_color')",
      },
    });
    const relId = await dwa.createRelationship({ data: lookupRelationship("new_account_gadgets", "account", "new_gadget", "new_AccountId") });
    const owner = await dwa.create({ collection: "accounts", data: { name: "Gadget owner" } });
    const g1 = await dwa.create({
      collection: "new_gadgets",
      data: { new_name: "First", new_code: "G-1", new_stage: 1, new_count: 7, new_color: 2, "new_accountid@odata.bind": `/accounts(${owner})` },
    });

    // The table: labels (with and without MSCRM.MergeLabels), description, change tracking.
    const def = await dwa.retrieveEntity({ key: tableId });
    def.DisplayName.LocalizedLabels[0].Label = "Gizmo";
    def.DisplayCollectionName = label("Gizmos");
    def.Description = label("Small devices");
    def.ChangeTrackingEnabled = true;
    await dwa.updateEntity({ data: def });
    let after = await dwa.retrieveEntity({ key: "LogicalName='new_gadget'", select: ["DisplayName", "DisplayCollectionName", "Description", "ChangeTrackingEnabled"] });
    assert.equal(after.DisplayName.UserLocalizedLabel.Label, "Gizmo");
    assert.equal(after.DisplayCollectionName.UserLocalizedLabel.Label, "Gizmos");
    assert.equal(after.Description.UserLocalizedLabel.Label, "Small devices");
    assert.equal(after.ChangeTrackingEnabled, true);
    await dwa.updateEntity({
      data: { MetadataId: tableId, SchemaName: "new_Gadget", DisplayName: { LocalizedLabels: [{ Label: "Gadget (fr)", LanguageCode: 1036 }] } },
      mergeLabels: true,
    });
    after = await dwa.retrieveEntity({ key: tableId, select: ["DisplayName", "Description"] });
    assert.equal(after.DisplayName.UserLocalizedLabel.Label, "Gizmo", "a merged label of another language keeps ours");
    assert.equal(after.Description.UserLocalizedLabel.Label, "Small devices");
    assertODataError(await server.api("PUT", `EntityDefinitions(${tableId})`, { body: { SchemaName: "new_Other" } }), { status: 400 });

    // A string column gets longer: values that did not fit now do.
    const long = "x".repeat(150);
    assertODataError(await server.api("PATCH", `new_gadgets(${g1})`, { body: { new_code: long } }), { status: 400 });
    const code = await dwa.retrieveAttribute({ entityKey: tableId, attributeKey: "LogicalName='new_code'", castType: `${CRM}StringAttributeMetadata` });
    code.MaxLength = 200;
    code.DisplayName.LocalizedLabels[0].Label = "Reference";
    code.RequiredLevel.Value = "Recommended";
    await dwa.updateAttribute({ entityKey: tableId, data: code, castType: `${CRM}StringAttributeMetadata` });
    const code2 = await dwa.retrieveAttribute({ entityKey: "LogicalName='new_gadget'", attributeKey: "LogicalName='new_code'", castType: `${CRM}StringAttributeMetadata` });
    assert.equal(code2.MaxLength, 200);
    assert.equal(code2.DisplayName.UserLocalizedLabel.Label, "Reference");
    assert.equal(code2.RequiredLevel.Value, "Recommended");
    await dwa.update({ collection: "new_gadgets", key: g1, data: { new_code: long } });
    // Shorter than a stored value: refused, nothing changed; shorter but fitting: accepted.
    const shrink = await server.api("PUT", `EntityDefinitions(${tableId})/Attributes(LogicalName='new_code')/${CRM}StringAttributeMetadata`, {
      body: { "@odata.type": `${CRM}StringAttributeMetadata`, LogicalName: "new_code", MaxLength: 100 },
    });
    const err = assertODataError(shrink, { status: 400, code: "0x80044331" });
    assert.match(err.message, /longer than 100/);
    assert.equal((await dwa.retrieveAttribute({ entityKey: tableId, attributeKey: "LogicalName='new_code'", castType: `${CRM}StringAttributeMetadata` })).MaxLength, 200);
    const fits = await server.api("PUT", `EntityDefinitions(${tableId})/Attributes(LogicalName='new_code')`, {
      body: { "@odata.type": `#${CRM}StringAttributeMetadata`, MaxLength: 160 },
    });
    assert.equal(fits.status, 204, fits.text);
    // Bounds of a whole number, and a type that does not match.
    await server.api("PUT", `EntityDefinitions(${tableId})/Attributes(LogicalName='new_count')`, {
      body: { "@odata.type": `${CRM}IntegerAttributeMetadata`, MinValue: 0, MaxValue: 1000 },
    });
    await dwa.update({ collection: "new_gadgets", key: g1, data: { new_count: 500 } });
    assertODataError(
      await server.api("PUT", `EntityDefinitions(${tableId})/Attributes(LogicalName='new_count')`, { body: { "@odata.type": `${CRM}StringAttributeMetadata`, MaxLength: 5 } }),
      { status: 400 },
    );

    // A local choice: an option added and one relabelled.
    await dwa.updateAttribute({
      entityKey: tableId,
      castType: `${CRM}PicklistAttributeMetadata`,
      data: {
        "@odata.type": `${CRM}PicklistAttributeMetadata`,
        MetadataId: (await dwa.retrieveAttribute({ entityKey: tableId, attributeKey: "LogicalName='new_stage'" })).MetadataId,
        LogicalName: "new_stage",
        OptionSet: { Options: [{ Value: 1, Label: label("Planning") }, { Value: 2, Label: label("Build") }, { Value: 3, Label: label("Ship") }] },
      },
    });
    await dwa.update({ collection: "new_gadgets", key: g1, data: { new_stage: 3 } });
    // A global choice: an option added.
    await dwa.updateGlobalOptionSet({
      data: {
        "@odata.type": `${CRM}OptionSetMetadata`,
        MetadataId: colorId,
        Name: "new_color",
        DisplayName: label("Colour"),
        Options: [{ Value: 1, Label: label("Red") }, { Value: 2, Label: label("Green") }, { Value: 3, Label: label("Blue") }],
      },
    });
    await dwa.update({ collection: "new_gadgets", key: g1, data: { new_color: 3 } });
    const formatted = await dwa.retrieve({
      collection: "new_gadgets",
      key: g1,
      select: ["new_name", "new_code", "new_stage", "new_color", "new_count"],
      includeAnnotations: "OData.Community.Display.V1.FormattedValue",
    });
    assert.equal(formatted["new_stage@OData.Community.Display.V1.FormattedValue"], "Ship");
    assert.equal(formatted["new_color@OData.Community.Display.V1.FormattedValue"], "Blue");
    assert.equal(formatted.new_code, long);
    assert.equal(formatted.new_count, 500);

    // The relationship's delete behaviour: RemoveLink → Cascade.
    const rel = { "@odata.type": `${CRM}OneToManyRelationshipMetadata`, MetadataId: relId, SchemaName: "new_account_gadgets", CascadeConfiguration: { Delete: "Cascade" } };
    await dwa.updateRelationship({ data: rel, castType: `${CRM}OneToManyRelationshipMetadata` });
    await dwa.deleteRecord({ collection: "accounts", key: owner });
    assertODataError(await server.api("GET", `new_gadgets(${g1})`), { status: 404 });

    // Everything replays after a restart.
    await server.restart();
    dwa = await server.dwa();
    after = await dwa.retrieveEntity({ key: tableId, select: ["DisplayName", "Description", "ChangeTrackingEnabled"] });
    assert.equal(after.DisplayName.UserLocalizedLabel.Label, "Gizmo");
    assert.equal(after.ChangeTrackingEnabled, true);
    const codeAfter = await dwa.retrieveAttribute({ entityKey: tableId, attributeKey: "LogicalName='new_code'", castType: `${CRM}StringAttributeMetadata` });
    assert.equal(codeAfter.MaxLength, 160);
    const owner2 = await dwa.create({ collection: "accounts", data: { name: "Second owner" } });
    const g2 = await dwa.create({
      collection: "new_gadgets",
      data: { new_name: "Second", new_code: "y".repeat(160), new_stage: 3, new_color: 3, "new_accountid@odata.bind": `/accounts(${owner2})` },
    });
    await dwa.deleteRecord({ collection: "accounts", key: owner2 });
    assertODataError(await server.api("GET", `new_gadgets(${g2})`), { status: 404 });
  });

  it("changes single options with InsertOptionValue, UpdateOptionValue and DeleteOptionValue", async () => {
    await dwa.createGlobalOptionSet({
      data: { "@odata.type": `${CRM}OptionSetMetadata`, Name: "new_size", Options: [{ Value: 10, Label: label("Small") }] },
    });
    await dwa.createEntity({
      data: entity("new_Parcel", "Parcel", [
        {
          "@odata.type": `${CRM}PicklistAttributeMetadata`,
          SchemaName: "new_Speed",
          RequiredLevel: required(),
          DisplayName: label("Speed"),
          OptionSet: { IsGlobal: false, OptionSetType: "Picklist", Options: [{ Value: 1, Label: label("Slow") }] },
        },
        {
          "@odata.type": `${CRM}PicklistAttributeMetadata`,
          SchemaName: "new_Size",
          RequiredLevel: required(),
          DisplayName: label("Size"),
          "GlobalOptionSet@odata.bind": "/GlobalOptionSetDefinitions(Name='new_size')",
        },
      ]),
    });
    // Global choice: a value chosen by the server, one given by the caller.
    const inserted = await dwa.callAction({ actionName: "InsertOptionValue", action: { OptionSetName: "new_size", Label: label("Medium") } });
    assert.equal(inserted.NewOptionValue, 11);
    await dwa.callAction({ actionName: "InsertOptionValue", action: { OptionSetName: "new_size", Value: 30, Label: label("Large") } });
    // Local options of a column.
    const local = { EntityLogicalName: "new_parcel", AttributeLogicalName: "new_speed" };
    await dwa.callAction({ actionName: "InsertOptionValue", action: { ...local, Value: 2, Label: label("Fast") } });
    await dwa.callAction({ actionName: "UpdateOptionValue", action: { ...local, Value: 1, Label: label("Slow and steady"), MergeLabels: false } });
    const p = await dwa.create({ collection: "new_parcels", data: { new_name: "P", new_speed: 2, new_size: 30 } });
    let got = await dwa.retrieve({ collection: "new_parcels", key: p, select: ["new_speed", "new_size"], includeAnnotations: "OData.Community.Display.V1.FormattedValue" });
    assert.equal(got["new_speed@OData.Community.Display.V1.FormattedValue"], "Fast");
    assert.equal(got["new_size@OData.Community.Display.V1.FormattedValue"], "Large");
    await dwa.callAction({ actionName: "DeleteOptionValue", action: { ...local, Value: 2 } });
    assertODataError(await server.api("PATCH", `new_parcels(${p})`, { body: { new_speed: 2 } }), { status: 400 });
    await dwa.update({ collection: "new_parcels", key: p, data: { new_speed: 1 } });
    got = await dwa.retrieve({ collection: "new_parcels", key: p, select: ["new_speed"], includeAnnotations: "OData.Community.Display.V1.FormattedValue" });
    assert.equal(got["new_speed@OData.Community.Display.V1.FormattedValue"], "Slow and steady");

    const bad = [
      [{ OptionSetName: "new_size", Value: 30, Label: label("Again") }, "InsertOptionValue", 400],
      [{ OptionSetName: "new_nosuch", Label: label("X") }, "InsertOptionValue", 404],
      [{ OptionSetName: "new_size", Value: 99 }, "DeleteOptionValue", 404],
      [{ EntityLogicalName: "new_parcel", AttributeLogicalName: "new_size", Value: 10, Label: label("S") }, "UpdateOptionValue", 400],
      [{ EntityLogicalName: "new_parcel", AttributeLogicalName: "new_name", Value: 1, Label: label("S") }, "UpdateOptionValue", 400],
      [{ ...local, Value: 1 }, "DeleteOptionValue", 400], // the last option
    ];
    for (const [body, action, status] of bad) assertODataError(await server.api("POST", action, { body }), { status, context: `${action} ${JSON.stringify(body)}` });

    await server.restart();
    dwa = await server.dwa();
    const sizes = await server.api("GET", "EntityDefinitions(LogicalName='new_parcel')/Attributes(LogicalName='new_size')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=GlobalOptionSet");
    assert.deepEqual(sizes.json.GlobalOptionSet.Options.map((o) => o.Value), [10, 11, 30]);
  });

  it("deletes keys, columns, relationships, choices and tables once nothing depends on them", async () => {
    await dwa.createGlobalOptionSet({
      data: { "@odata.type": `${CRM}OptionSetMetadata`, Name: "new_shade", Options: [{ Value: 1, Label: label("Light") }, { Value: 2, Label: label("Dark") }] },
    });
    const depotId = await dwa.createEntity({
      data: entity("new_Depot", "Depot", [
        stringAttr("new_Code", "Code", { MaxLength: 20 }),
        { "@odata.type": `${CRM}IntegerAttributeMetadata`, SchemaName: "new_Size", RequiredLevel: required(), DisplayName: label("Size") },
      ]),
    });
    await dwa.createEntity({
      data: entity("new_Crate", "Crate", [
        {
          "@odata.type": `${CRM}PicklistAttributeMetadata`,
          SchemaName: "new_Shade",
          RequiredLevel: required(),
          DisplayName: label("Shade"),
          "GlobalOptionSet@odata.bind": "/GlobalOptionSetDefinitions(Name='new_shade')",
        },
      ]),
    });
    await dwa.createRelationship({ data: lookupRelationship("new_depot_crates", "new_depot", "new_crate", "new_DepotId") });
    const nnId = await dwa.createRelationship({
      data: { "@odata.type": `${CRM}ManyToManyRelationshipMetadata`, SchemaName: "new_depot_contact", Entity1LogicalName: "new_depot", Entity2LogicalName: "contact", IntersectEntityName: "new_depot_contact" },
    });
    const d1 = await dwa.create({ collection: "new_depots", data: { new_name: "North", new_code: "N", new_size: 5 } });
    const d2 = await dwa.create({ collection: "new_depots", data: { new_name: "South", new_code: "S", new_size: 5 } });
    const crate = await dwa.create({ collection: "new_crates", data: { new_name: "C1", new_shade: 2, "new_depotid@odata.bind": `/new_depots(${d1})` } });

    // Alternate keys: created over unique data, enforced, listed; refused over duplicate data.
    const created = await server.api("POST", `EntityDefinitions(${depotId})/Keys`, {
      body: { SchemaName: "new_code_key", DisplayName: label("Code key"), KeyAttributes: ["new_code"] },
    });
    assert.equal(created.status, 204, created.text);
    assert.match(created.headers.get("odata-entityid"), new RegExp(`EntityDefinitions\\(${depotId}\\)/Keys\\([0-9a-f-]{36}\\)$`));
    const keys = (await server.api("GET", "EntityDefinitions(LogicalName='new_depot')/Keys")).json.value;
    assert.deepEqual(keys.map((k) => [k.LogicalName, k.KeyAttributes]), [["new_code_key", ["new_code"]]]);
    assert.equal((await server.api("GET", "new_depots(new_code='S')?$select=new_name")).json.new_name, "South");
    assertODataError(await server.api("POST", "new_depots", { body: { new_name: "Dup", new_code: "N" } }), { status: 412 });
    const dupKey = await server.api("POST", "EntityDefinitions(LogicalName='new_depot')/Keys", { body: { SchemaName: "new_size_key", KeyAttributes: ["new_size"] } });
    assert.match(assertODataError(dupKey, { status: 412, code: "0x80060892" }).message, /new_size_key.*2 records/);
    assert.equal((await server.api("GET", "EntityDefinitions(LogicalName='new_depot')/Keys")).json.value.length, 1);
    assertODataError(await server.api("POST", "EntityDefinitions(LogicalName='new_depot')/Keys", { body: { SchemaName: "new_code_key", KeyAttributes: ["new_code"] } }), { status: 412 });
    assertODataError(await server.api("POST", "EntityDefinitions(LogicalName='new_depot')/Keys", { body: { SchemaName: "new_bad_key", KeyAttributes: ["new_nosuch"] } }), { status: 400 });

    // A column in a key cannot go before the key; the key goes by its MetadataId or LogicalName.
    const inKey = await server.api("DELETE", "EntityDefinitions(LogicalName='new_depot')/Attributes(LogicalName='new_code')");
    assert.match(assertODataError(inKey, { status: 400, code: "0x8004f01f" }).message, /alternate key new_depot\.new_code_key/);
    assert.equal((await server.api("DELETE", `EntityDefinitions(LogicalName='new_depot')/Keys(${keys[0].MetadataId})`)).status, 204);
    assert.equal((await server.api("GET", "EntityDefinitions(LogicalName='new_depot')/Keys")).json.value.length, 0);
    await dwa.create({ collection: "new_depots", data: { new_name: "Dup", new_code: "N" } }); // no key any more

    // The column goes; the data of the other columns stays.
    assert.equal((await server.api("DELETE", "EntityDefinitions(LogicalName='new_depot')/Attributes(LogicalName='new_code')")).status, 204);
    assert.ok(!(await attributeNames("new_depot")).includes("new_code"));
    assert.doesNotMatch(entityType(await csdl(), "new_depot"), /Name="new_code"/);
    assertODataError(await server.api("GET", `new_depots(${d1})?$select=new_code`), { status: 400 });
    const north = await dwa.retrieve({ collection: "new_depots", key: d1, select: ["new_name", "new_size"] });
    assert.deepEqual([north.new_name, north.new_size], ["North", 5]);

    // A table with a lookup and an N:N pointing at it cannot go; the error names both.
    const blocked = await server.api("DELETE", `EntityDefinitions(${depotId})`);
    const blockedErr = assertODataError(blocked, { status: 400, code: "0x8004f01f" });
    assert.match(blockedErr.message, /new_crate\.new_depotid/);
    assert.match(blockedErr.message, /new_depot_contact/);
    assert.equal((await server.api("GET", `new_depots(${d1})`)).status, 200);

    // Deleting the 1:N relationship deletes its lookup column (and the N:N its intersect table).
    await dwa.deleteRelationship({ key: "SchemaName='new_depot_crates'" });
    assert.ok(!(await attributeNames("new_crate")).includes("new_depotid"));
    assert.doesNotMatch(entityType(await csdl(), "new_crate"), /new_depotid/);
    assertODataError(await server.api("GET", `new_crates(${crate})?$select=_new_depotid_value`), { status: 400 });
    await dwa.deleteRelationship({ key: nnId });
    assertODataError(await server.api("GET", "new_depot_contacts"), { status: 404 });
    assertODataError(await server.api("DELETE", `RelationshipDefinitions(${nnId})`), { status: 404, code: "0x80040217" });

    // A global choice in use cannot go until its column has gone.
    const choiceInUse = await server.api("DELETE", "GlobalOptionSetDefinitions(Name='new_shade')");
    assert.match(assertODataError(choiceInUse, { status: 400, code: "0x80048417" }).message, /new_crate\.new_shade/);
    assert.equal((await server.api("DELETE", "EntityDefinitions(LogicalName='new_crate')/Attributes(LogicalName='new_shade')")).status, 204);
    await dwa.deleteGlobalOptionSet({ key: "Name='new_shade'" });
    assertODataError(await server.api("DELETE", "GlobalOptionSetDefinitions(Name='new_shade')"), { status: 404 });

    // Now the table goes, with its data: its entity set answers 404 and it leaves $metadata.
    await dwa.deleteRecord({ collection: "EntityDefinitions", key: "LogicalName='new_depot'" });
    assertODataError(await server.api("GET", "new_depots"), { status: 404 });
    assertODataError(await server.api("GET", "EntityDefinitions(LogicalName='new_depot')"), { status: 404 });
    const xml = await csdl();
    assert.equal(entityType(xml, "new_depot"), null);
    assert.doesNotMatch(xml, /EntitySet Name="new_depots"/);
    assert.equal((await dwa.retrieve({ collection: "new_crates", key: crate, select: ["new_name"] })).new_name, "C1");

    // System components and unknown ones.
    const system = [
      "EntityDefinitions(LogicalName='account')",
      "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')",
      "EntityDefinitions(LogicalName='new_crate')/Attributes(LogicalName='createdon')",
      "RelationshipDefinitions(SchemaName='contact_customer_accounts')",
    ];
    for (const p of system) assertODataError(await server.api("DELETE", p), { status: 403, code: "0x8004f032", context: p });
    const primary = await server.api("DELETE", "EntityDefinitions(LogicalName='new_crate')/Attributes(LogicalName='new_name')");
    assert.match(assertODataError(primary, { status: 400 }).message, /primary name/);
    const unknown = [
      "EntityDefinitions(LogicalName='new_nosuch')",
      "EntityDefinitions(LogicalName='new_crate')/Attributes(LogicalName='new_nosuch')",
      "EntityDefinitions(LogicalName='new_crate')/Keys(LogicalName='new_nosuch')",
      "RelationshipDefinitions(SchemaName='new_nosuch')",
      "GlobalOptionSetDefinitions(Name='new_nosuch')",
    ];
    for (const p of unknown) assertODataError(await server.api("DELETE", p), { status: 404, code: "0x80040217", context: p });

    // After a restart the log replays to the same state, and a dropped table can be created anew.
    await server.restart();
    dwa = await server.dwa();
    assertODataError(await server.api("GET", "new_depots"), { status: 404 });
    assert.ok(!(await attributeNames("new_crate")).includes("new_depotid"));
    assert.ok(!(await attributeNames("new_crate")).includes("new_shade"));
    assert.equal((await dwa.retrieve({ collection: "new_crates", key: crate, select: ["new_name"] })).new_name, "C1");
    await dwa.createEntity({ data: entity("new_Depot", "Depot", [{ "@odata.type": `${CRM}MemoAttributeMetadata`, SchemaName: "new_Code", RequiredLevel: required(), DisplayName: label("Code") }]) });
    const fresh = await dwa.create({ collection: "new_depots", data: { new_name: "Again", new_code: "now a memo" } });
    const again = await dwa.retrieve({ collection: "new_depots", key: fresh, select: ["new_name", "new_code"] });
    assert.deepEqual([again.new_name, again.new_code], ["Again", "now a memo"]);
    assertODataError(await server.api("GET", `new_depots(${fresh})?$select=new_size`), { status: 400 });
    assert.equal((await dwa.retrieveMultiple({ collection: "new_depots", select: ["new_name"] })).value.length, 1, "old rows are gone");
  });
});
