// File and image columns: dynamics-web-api's uploadFile (chunked) and downloadFile (Range, base64
// JSON), single-request uploads and Range downloads over raw HTTP, DELETE of a file, createAttribute
// with FileAttributeMetadata, errors in the Dataverse shape, restarts and record deletes.
// Wire facts: shared/reference/dataverse-webapi.md §5.8.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { startServer, SCHEMA_FIXTURE, GUID_RE, uniqueTag, assertODataError, rawExchange } from "./helpers.mjs";

const CHUNK = 4 * 1024 * 1024;
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let server;
let dwa;

before(async () => {
  server = await startServer({ schema: SCHEMA_FIXTURE });
  dwa = await server.dwa();
});

after(async () => {
  await server?.cleanup();
});

/** Raw request that keeps binary bodies intact: {status, headers, buf, text, json}. */
async function raw(method, path, { headers = {}, body } = {}) {
  const h = {
    Accept: "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    Authorization: `Bearer ${await server.token()}`,
    ...headers,
  };
  const res = await fetch(server.url(path), { method, headers: h, body, signal: AbortSignal.timeout(60_000) });
  const buf = Buffer.from(await res.arrayBuffer());
  const text = buf.toString("utf8");
  let json;
  if ((res.headers.get("content-type") ?? "").includes("json") && text.length) json = JSON.parse(text);
  return { status: res.status, headers: res.headers, buf, text, json };
}

const octet = (name, extra = {}) => ({ "Content-Type": "application/octet-stream", ...(name ? { "x-ms-file-name": name } : {}), ...extra });

async function newProject(extra = {}) {
  return server.createOne("new_projects", { new_name: uniqueTag("file"), ...extra });
}

async function project(id, select) {
  const r = await server.api("GET", `new_projects(${id})?$select=${select}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function png(size) {
  return Buffer.concat([PNG_MAGIC, randomBytes(Math.max(0, size - PNG_MAGIC.length))]);
}

describe("dynamics-web-api uploadFile and downloadFile", () => {
  it("round-trips a file larger than 4 MiB through chunked upload and ranged download", async () => {
    const id = await newProject();
    const data = randomBytes(2 * CHUNK + 123_457);
    await dwa.uploadFile({ collection: "new_projects", key: id, property: "new_document", fileName: "big.bin", data });
    const rec = await project(id, "new_document,new_document_name");
    assert.match(rec.new_document, GUID_RE, "the file column reads as the file id");
    assert.equal(rec.new_document_name, "big.bin");
    const down = await dwa.downloadFile({ collection: "new_projects", key: id, property: "new_document" });
    assert.equal(down.fileName, "big.bin");
    assert.equal(down.fileSize, data.length);
    assert.ok(Buffer.compare(Buffer.from(down.data), data) === 0, "downloaded bytes equal the uploaded ones");
  });

  it("handles a size that is an exact multiple of the chunk size (the trailing empty chunk and range)", async () => {
    const id = await newProject();
    const data = randomBytes(2 * CHUNK);
    await dwa.uploadFile({ collection: "new_projects", key: id, property: "new_document", fileName: "exact.bin", data });
    const down = await dwa.downloadFile({ collection: "new_projects", key: id, property: "new_document" });
    assert.equal(down.fileSize, 2 * CHUNK);
    assert.ok(Buffer.compare(Buffer.from(down.data), data) === 0);
  });

  it("uploads and downloads a small file, replacing the previous one", async () => {
    const id = await newProject();
    await dwa.uploadFile({ collection: "new_projects", key: id, property: "new_document", fileName: "first.txt", data: Buffer.from("first version") });
    const first = (await project(id, "new_document")).new_document;
    const data = Buffer.from("hello, file column");
    await dwa.uploadFile({ collection: "new_projects", key: id, property: "new_document", fileName: "notes.txt", data });
    const rec = await project(id, "new_document,new_document_name");
    assert.notEqual(rec.new_document, first, "a new upload is a new file");
    assert.equal(rec.new_document_name, "notes.txt");
    const down = await dwa.downloadFile({ collection: "new_projects", key: id, property: "new_document" });
    assert.equal(Buffer.from(down.data).toString(), "hello, file column");
    assert.equal(down.fileName, "notes.txt");
    const meta = await raw("GET", `new_projects(${id})/new_document/$value`);
    assert.equal(meta.headers.get("mimetype"), "text/plain");
  });

  it("uploads an image and serves it with the record and at full size", async () => {
    const id = await newProject();
    const data = png(3000);
    await dwa.uploadFile({ collection: "new_projects", key: id, property: "new_logo", fileName: "logo.png", data });
    const rec = await project(id, "new_logo,new_logoid,new_logo_url,new_logo_timestamp");
    assert.match(rec.new_logoid, GUID_RE);
    assert.equal(rec.new_logo_url, `/api/data/v9.2/new_projects(${id})/new_logo/$value?size=full`);
    assert.equal(typeof rec.new_logo_timestamp, "number");
    assert.equal(rec.new_logo, data.toString("base64"), "a small image travels with the record as Edm.Binary");
    const down = await dwa.downloadFile({ collection: "new_projects", key: id, property: "new_logo" });
    assert.ok(Buffer.compare(Buffer.from(down.data), data) === 0);
    const full = await raw("GET", `new_projects(${id})/new_logo/$value?size=full`);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get("mimetype"), "image/png");
    assert.ok(Buffer.compare(full.buf, data) === 0);
    // The record's $value URL (relative to the server) works as given.
    const viaUrl = await raw("GET", rec.new_logo_url);
    assert.ok(Buffer.compare(viaUrl.buf, data) === 0);
  });
});

describe("raw HTTP", () => {
  it("single-request upload, download with headers, and Range downloads", async () => {
    const id = await newProject();
    const data = randomBytes(100_000);
    const up = await raw("PATCH", `new_projects(${id})/new_document`, { headers: octet("report.pdf"), body: data });
    assert.equal(up.status, 204, up.text);
    const whole = await raw("GET", `new_projects(${id})/new_document/$value`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get("x-ms-file-size"), String(data.length));
    assert.equal(whole.headers.get("x-ms-file-name"), "report.pdf");
    assert.equal(whole.headers.get("mimetype"), "application/pdf");
    assert.ok(Buffer.compare(whole.buf, data) === 0);

    const part = await raw("GET", `new_projects(${id})/new_document/$value`, { headers: { Range: "bytes=10-19" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 10-19/${data.length}`);
    assert.equal(part.headers.get("x-ms-chunk-size"), String(CHUNK));
    assert.ok(Buffer.compare(part.buf, data.subarray(10, 20)) === 0);

    const tail = await raw("GET", `new_projects(${id})/new_document/$value`, { headers: { Range: "bytes=-5" } });
    assert.equal(tail.status, 206);
    assert.ok(Buffer.compare(tail.buf, data.subarray(data.length - 5)) === 0);

    const open = await raw("GET", `new_projects(${id})/new_document/$value`, { headers: { Range: "bytes=99990-" } });
    assert.ok(Buffer.compare(open.buf, data.subarray(99_990)) === 0);

    // dynamics-web-api's form: JSON with the base64 of the range.
    const json = await raw("GET", `new_projects(${id})/new_document?size=full`, { headers: { Range: "bytes=0-99" } });
    assert.equal(json.status, 206);
    assert.match(json.headers.get("content-disposition"), /^attachment; filename="report\.pdf"/);
    assert.ok(json.headers.get("content-type").startsWith("application/json"));
    assert.ok(Buffer.compare(Buffer.from(json.json.value, "base64"), data.subarray(0, 100)) === 0);
    assert.match(json.json["@odata.context"], /\$metadata#new_projects\(.*\)\/new_document$/);

    const beyond = await raw("GET", `new_projects(${id})/new_document/$value`, { headers: { Range: `bytes=${data.length + 1}-` } });
    assertODataError(beyond, { status: 416 });
    assert.equal(beyond.headers.get("content-range"), `bytes */${data.length}`);
    const multi = await raw("GET", `new_projects(${id})/new_document/$value`, { headers: { Range: "bytes=0-1,4-5" } });
    assertODataError(multi, { status: 400, code: "0x80090017" });
    const garbage = await raw("GET", `new_projects(${id})/new_document/$value`, { headers: { Range: "lines=1-2" } });
    assertODataError(garbage, { status: 400 });
  });

  it("single-request uploads may exceed the 16 MiB body limit of other requests (up to 128 MiB)", async () => {
    const id = await newProject();
    const data = randomBytes(20 * 1024 * 1024);
    const up = await raw("PATCH", `new_projects(${id})/new_document`, { headers: octet("twenty.bin"), body: data });
    assert.equal(up.status, 204, up.text);
    const down = await raw("GET", `new_projects(${id})/new_document/$value`);
    assert.ok(Buffer.compare(down.buf, data) === 0);
    // Beyond 128 MiB the server answers 413 as soon as it has read the header.
    const head =
      `PATCH /api/data/v9.2/new_projects(${id})/new_document HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Authorization: Bearer ${await server.token()}\r\nContent-Type: application/octet-stream\r\n` +
      `x-ms-file-name: huge.bin\r\nContent-Length: ${128 * 1024 * 1024 + 1}\r\n\r\n`;
    const huge = await rawExchange(server.port, Buffer.from(head));
    assert.equal(huge.status, 413, huge.head);
    assert.match(huge.body, /"code":"0x8004800a"/i);
  });

  it("chunked upload: init answers a session, chunks answer 206 then 204", async () => {
    const id = await newProject();
    const data = randomBytes(CHUNK + 1000);
    const init = await raw("PATCH", `new_projects(${id})/new_document?x-ms-file-name=parts.bin`, {
      headers: { "x-ms-transfer-mode": "chunked" },
    });
    assert.equal(init.status, 200, init.text);
    assert.equal(init.buf.length, 0, "the init response has no body");
    assert.equal(init.headers.get("odata-entityid"), null, "no OData-EntityId (DWA would read it instead of Location)");
    assert.equal(init.headers.get("x-ms-chunk-size"), String(CHUNK));
    assert.equal(init.headers.get("accept-ranges"), "bytes");
    const location = init.headers.get("location");
    assert.match(location, new RegExp(`^${server.apiRoot.replace(/[.]/g, "\\.")}new_projects\\(${id}\\)/new_document\\?sessiontoken=[A-Za-z0-9_-]+$`));

    const chunk = (first, last, body, total = data.length) =>
      raw("PATCH", location, { headers: { "Content-Type": "application/octet-stream", "Content-Range": `bytes ${first}-${last}/${total}` }, body });

    const c1 = await chunk(0, CHUNK - 1, data.subarray(0, CHUNK));
    assert.equal(c1.status, 206, c1.text);
    assert.equal((await project(id, "new_document")).new_document, null, "nothing shows before the last chunk");

    assertODataError(await chunk(10, 19, data.subarray(10, 20)), { status: 400, code: "0x80090005" }); // overlaps
    assertODataError(await chunk(CHUNK, CHUNK + 9, data.subarray(CHUNK, CHUNK + 5)), { status: 400, code: "0x80090005" }); // wrong length
    assertODataError(await chunk(CHUNK, CHUNK + 999, data.subarray(CHUNK), data.length + 1), { status: 400, code: "0x80090005" }); // other total
    const noRange = await raw("PATCH", location, { headers: octet(null), body: data.subarray(CHUNK) });
    assertODataError(noRange, { status: 400, code: "0x80090005" });
    const badRange = await raw("PATCH", location, { headers: { ...octet(null), "Content-Range": "bytes nonsense" }, body: data.subarray(CHUNK) });
    assertODataError(badRange, { status: 400, code: "0x80090005" });
    const tooBig = Buffer.alloc(CHUNK + 1);
    assertODataError(await chunk(0, CHUNK, tooBig, 3 * CHUNK), { status: 400, code: "0x80090008" });

    const last = await chunk(CHUNK, data.length - 1, data.subarray(CHUNK));
    assert.equal(last.status, 204, last.text);
    const whole = await raw("GET", `new_projects(${id})/new_document/$value`);
    assert.ok(Buffer.compare(whole.buf, data) === 0);
    assert.equal(whole.headers.get("x-ms-file-name"), "parts.bin");

    const unknown = await raw("PATCH", `new_projects(${id})/new_document?sessiontoken=nosuchsession`, {
      headers: { "Content-Type": "application/octet-stream", "Content-Range": "bytes 0-0/1" },
      body: Buffer.from("x"),
    });
    assertODataError(unknown, { status: 404 });
  });

  it("keeps file names beyond ASCII, from the header (ISO-8859-1) or the query (UTF-8)", async () => {
    const id = await newProject();
    const up = await raw("PATCH", `new_projects(${id})/new_document`, { headers: octet("Größe ü.txt"), body: Buffer.from("x") });
    assert.equal(up.status, 204, up.text);
    assert.equal((await project(id, "new_document_name")).new_document_name, "Größe ü.txt");
    const down = await raw("GET", `new_projects(${id})/new_document/$value`);
    assert.equal(down.headers.get("x-ms-file-name"), "Größe ü.txt");
    assert.match(down.headers.get("content-disposition"), /filename\*=UTF-8''Gr%C3%B6%C3%9Fe%20%C3%BC\.txt$/);
    await dwa.uploadFile({ collection: "new_projects", key: id, property: "new_document", fileName: "résumé€.pdf", data: Buffer.from("cv") });
    assert.equal((await project(id, "new_document_name")).new_document_name, "résumé€.pdf");
  });

  it("DELETE removes the file; the record stays and the column reads null", async () => {
    const id = await newProject();
    assert.equal((await raw("PATCH", `new_projects(${id})/new_document`, { headers: octet("gone.txt"), body: Buffer.from("bye") })).status, 204);
    const before = await server.api("GET", `new_projects(${id})?$select=new_name`);
    const del = await raw("DELETE", `new_projects(${id})/new_document`);
    assert.equal(del.status, 204, del.text);
    const rec = await server.api("GET", `new_projects(${id})?$select=new_document,new_document_name`);
    assert.equal(rec.status, 200, "the record is still there");
    assert.equal(rec.json.new_document, null);
    assert.equal(rec.json.new_document_name, null);
    assert.notEqual(rec.headers.get("etag"), before.headers.get("etag"), "removing the file changes the record's version");
    assertODataError(await raw("GET", `new_projects(${id})/new_document/$value`), { status: 404, code: "0x80040217" });
    assert.equal((await raw("DELETE", `new_projects(${id})/new_document`)).status, 204, "deleting again is harmless");
  });

  it("answers bad requests with 4xx in the Dataverse error shape", async () => {
    const id = await newProject();
    const missing = randomUUID();
    assertODataError(await raw("GET", `new_projects(${id})/new_document/$value`), { status: 404, code: "0x80040217" });
    assertODataError(await raw("GET", `new_projects(${id})/new_document?size=full`, { headers: { Range: "bytes=0-10" } }), { status: 404 });
    assertODataError(await raw("GET", `new_projects(${missing})/new_document/$value`), { status: 404, code: "0x80040217" });
    assertODataError(await raw("PATCH", `new_projects(${missing})/new_document`, { headers: octet("a.txt"), body: Buffer.from("x") }), { status: 404, code: "0x80040217" });
    assertODataError(await raw("PATCH", `new_projects(${id})/new_document`, { headers: octet(null), body: Buffer.from("x") }), { status: 400 });
    assertODataError(await raw("PATCH", `new_projects(${id})/new_document`, { headers: { "Content-Type": "application/json", "x-ms-file-name": "a.json" }, body: "{}" }), { status: 400 });
    assertODataError(await raw("PUT", `new_projects(${id})/new_document`, { headers: { "Content-Type": "application/json" }, body: JSON.stringify({ value: "x" }) }), { status: 405 });
    assertODataError(await raw("PATCH", `new_projects(${id})/new_document?x-ms-file-name=a.bin`, { headers: { "x-ms-transfer-mode": "chunked" }, body: Buffer.from("body") }), { status: 400 });
    assertODataError(await raw("PATCH", `new_projects(${id})/new_logo`, { headers: octet("logo.png"), body: Buffer.from("not an image") }), { status: 400 });
    // A file column is not set through a record's JSON body (null is tolerated, as for read-only columns).
    const body = await server.api("PATCH", `new_projects(${id})`, { body: { new_document: randomUUID() } });
    assertODataError(body, { status: 400, code: "0x80048d19" });
    const nulls = await server.api("PATCH", `new_projects(${id})`, { body: { new_document: null, new_logo: null } });
    assert.equal(nulls.status, 204, nulls.text);
  });
});

describe("metadata", () => {
  it("describes file and image columns in $metadata and EntityDefinitions", async () => {
    const csdl = await server.api("GET", "$metadata", { headers: { Accept: "application/xml" } });
    const type = /<EntityType Name="new_project"[\s\S]*?<\/EntityType>/.exec(csdl.text)[0];
    assert.match(type, /<Property Name="new_document" Type="Edm.Guid"\/>/);
    assert.match(type, /<Property Name="new_document_name" Type="Edm.String"\/>/);
    assert.match(type, /<Property Name="new_logo" Type="Edm.Binary"\/>/);
    assert.match(type, /<Property Name="new_logoid" Type="Edm.Guid"\/>/);
    assert.match(type, /<Property Name="new_logo_url" Type="Edm.String"\/>/);

    const file = await server.api("GET", "EntityDefinitions(LogicalName='new_project')/Attributes(LogicalName='new_document')");
    assert.equal(file.status, 200, file.text);
    assert.equal(file.json["@odata.type"], "#Microsoft.Dynamics.CRM.FileAttributeMetadata");
    assert.equal(file.json.AttributeType, "Virtual");
    assert.equal(file.json.AttributeTypeName.Value, "FileType");
    assert.equal(file.json.MaxSizeInKB, 32768);
    const images = await server.api("GET", "EntityDefinitions(LogicalName='new_project')/Attributes/Microsoft.Dynamics.CRM.ImageAttributeMetadata?$select=LogicalName,MaxSizeInKB");
    assert.equal(images.status, 200, images.text);
    assert.deepEqual(images.json.value.map((a) => [a.LogicalName, a.MaxSizeInKB]), [["new_logo", 10240]]);
  });

  it("createAttribute with FileAttributeMetadata makes a working column that enforces MaxSizeInKB", async () => {
    await dwa.createAttribute({
      entityKey: "LogicalName='new_project'",
      data: {
        "@odata.type": "Microsoft.Dynamics.CRM.FileAttributeMetadata",
        SchemaName: "new_Contract",
        MaxSizeInKB: 1,
        DisplayName: { LocalizedLabels: [{ Label: "Contract", LanguageCode: 1033 }] },
      },
    });
    const attr = await server.api("GET", "EntityDefinitions(LogicalName='new_project')/Attributes(LogicalName='new_contract')/Microsoft.Dynamics.CRM.FileAttributeMetadata?$select=MaxSizeInKB");
    assert.equal(attr.status, 200, attr.text);
    assert.equal(attr.json.MaxSizeInKB, 1);

    const id = await newProject();
    const ok = Buffer.alloc(1024, 7);
    await dwa.uploadFile({ collection: "new_projects", key: id, property: "new_contract", fileName: "c.bin", data: ok });
    const rec = await project(id, "new_contract,new_contract_name");
    assert.match(rec.new_contract, GUID_RE);
    assert.equal(rec.new_contract_name, "c.bin");

    const big = await raw("PATCH", `new_projects(${id})/new_contract`, { headers: octet("big.bin"), body: Buffer.alloc(1025) });
    assertODataError(big, { status: 400, code: "0x80044a02" });
    await assert.rejects(
      dwa.uploadFile({ collection: "new_projects", key: id, property: "new_contract", fileName: "big.bin", data: Buffer.alloc(2048) }),
      (e) => e.status === 400 && e.code === "0x80044a02"
    );
    const still = await dwa.downloadFile({ collection: "new_projects", key: id, property: "new_contract" });
    assert.ok(Buffer.compare(Buffer.from(still.data), ok) === 0, "a refused upload leaves the previous file");
  });
});

describe("durability and record deletes", () => {
  it("files survive a restart", async () => {
    const id = await newProject();
    const data = randomBytes(CHUNK + 77);
    await dwa.uploadFile({ collection: "new_projects", key: id, property: "new_document", fileName: "keep.bin", data });
    const logo = png(500);
    assert.equal((await raw("PATCH", `new_projects(${id})/new_logo`, { headers: octet("k.png"), body: logo })).status, 204);
    await server.restart();
    dwa = await server.dwa();
    const down = await dwa.downloadFile({ collection: "new_projects", key: id, property: "new_document" });
    assert.ok(Buffer.compare(Buffer.from(down.data), data) === 0);
    assert.equal(down.fileName, "keep.bin");
    assert.equal((await project(id, "new_logo")).new_logo, logo.toString("base64"));
  });

  it("deleting the record deletes its files and unfinished uploads", async () => {
    const id = randomUUID();
    await newProject({ new_projectid: id });
    assert.equal((await raw("PATCH", `new_projects(${id})/new_document`, { headers: octet("old.txt"), body: Buffer.from("old") })).status, 204);
    const init = await raw("PATCH", `new_projects(${id})/new_logo?x-ms-file-name=l.png`, { headers: { "x-ms-transfer-mode": "chunked" } });
    assert.equal(init.status, 200);
    const location = init.headers.get("location");
    const first = png(100);
    const c1 = await raw("PATCH", location, { headers: { "Content-Type": "application/octet-stream", "Content-Range": "bytes 0-99/200" }, body: first });
    assert.equal(c1.status, 206);

    assert.equal((await server.api("DELETE", `new_projects(${id})`)).status, 204);
    // The same id again: had the file rows outlived the record, the new record would show them.
    await newProject({ new_projectid: id });
    assertODataError(await raw("GET", `new_projects(${id})/new_document/$value`), { status: 404 });
    assert.equal((await project(id, "new_document")).new_document, null);
    const late = await raw("PATCH", location, { headers: { "Content-Type": "application/octet-stream", "Content-Range": "bytes 100-199/200" }, body: randomBytes(100) });
    assertODataError(late, { status: 404 });
  });
});
