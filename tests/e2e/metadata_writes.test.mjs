// Metadata writes through dynamics-web-api: createGlobalOptionSet, createEntity, createAttribute,
// createRelationship; the new schema is live at once (CRUD, $metadata) and survives a restart.
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
    assertODataError(await server.api("DELETE", "EntityDefinitions(LogicalName='account')"), { status: 405 });
  });
});
