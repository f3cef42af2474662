// The AWS SDK for JavaScript v3 against a running gateway; run by tests/clients/test_js_sdk.py.
//
//   node scenario.mjs basic|multipart|copy
//
// Settings come from the environment: S3_ENDPOINT, S3_BUCKET, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, and optionally PART_SIZE and MULTIPART_SIZE (bytes).
// Exits 0 when every step held; otherwise prints the failing step, the S3 error code and
// HTTP status to stderr and exits 1.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import {
  S3Client,
  CreateBucketCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  PutObjectCommand,
  HeadObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  ListObjectsCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteBucketCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  ListPartsCommand,
  ListMultipartUploadsCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
  paginateListObjectsV2,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const MiB = 1024 * 1024;
const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const bucket = env("S3_BUCKET");
const partSize = Number(env("PART_SIZE", 5 * MiB));
const multipartSize = Number(env("MULTIPART_SIZE", 12 * MiB));

const s3 = new S3Client({
  endpoint: env("S3_ENDPOINT"),
  region: "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1,
  credentials: {
    accessKeyId: env("AWS_ACCESS_KEY_ID"),
    secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
  },
});

let step = "start";
const send = (name, command) => {
  step = name;
  return s3.send(command);
};

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// Deterministic incompressible bytes (xorshift32), so a mismatch is reproducible.
function bytes(size, seed) {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out.writeUInt32LE(x, i < size - 3 ? i : size - 4);
  }
  return out;
}

const md5 = (buf) => createHash("md5").update(buf).digest("hex");
const body = async (res) => Buffer.from(await res.Body.transformToByteArray());
const sameBytes = (a, b) => a.length === b.length && a.equals(b);
const sorted = (items) => [...items].sort();

async function get(key, extra = {}) {
  return body(await send(`GetObject ${key}`, new GetObjectCommand({ Bucket: bucket, Key: key, ...extra })));
}

async function allKeys(prefix = "") {
  const keys = [];
  for await (const page of paginateListObjectsV2({ client: s3, pageSize: 2 }, { Bucket: bucket, Prefix: prefix })) {
    for (const o of page.Contents ?? []) keys.push(o.Key);
  }
  return keys;
}

async function basic() {
  const files = {
    "docs/a.txt": Buffer.from("alpha\n"),
    "docs/sub/b.txt": Buffer.from("bravo\n".repeat(1000)),
    "top.bin": bytes(70 * 1024, 7),
  };
  await send("CreateBucket", new CreateBucketCommand({ Bucket: bucket }));
  await send("HeadBucket", new HeadBucketCommand({ Bucket: bucket }));
  const buckets = await send("ListBuckets", new ListBucketsCommand({}));
  check(buckets.Buckets.some((b) => b.Name === bucket), "bucket listed");

  for (const [key, data] of Object.entries(files)) {
    const put = await send(`PutObject ${key}`, new PutObjectCommand({
      Bucket: bucket, Key: key, Body: data, ContentType: "application/x-test",
      Metadata: { origin: "js-sdk" },
    }));
    check(put.ETag === `"${md5(data)}"`, `ETag of ${key} is the MD5: ${put.ETag}`);
  }
  // A stream goes up aws-chunked with a trailing checksum, in 64 KiB chunks as a file
  // read stream delivers them (AWS requires every chunk but the last to be >= 8 KiB).
  const streamed = bytes(200 * 1024 + 17, 9);
  const pieces = [];
  for (let off = 0; off < streamed.length; off += 64 * 1024) pieces.push(streamed.subarray(off, off + 64 * 1024));
  await send("PutObject stream", new PutObjectCommand({
    Bucket: bucket, Key: "stream.bin", Body: Readable.from(pieces), ContentLength: streamed.length,
  }));
  files["stream.bin"] = streamed;

  const head = await send("HeadObject", new HeadObjectCommand({ Bucket: bucket, Key: "docs/a.txt" }));
  check(head.ContentLength === files["docs/a.txt"].length, "HeadObject size");
  check(head.ContentType === "application/x-test", `content type ${head.ContentType}`);
  check(head.Metadata?.origin === "js-sdk", `metadata ${JSON.stringify(head.Metadata)}`);

  const root = await send("ListObjectsV2 delimiter", new ListObjectsV2Command({ Bucket: bucket, Delimiter: "/" }));
  check(JSON.stringify((root.CommonPrefixes ?? []).map((p) => p.Prefix)) === '["docs/"]', "root prefixes");
  check(JSON.stringify(sorted((root.Contents ?? []).map((o) => o.Key))) === '["stream.bin","top.bin"]', "root keys");
  const docs = await send("ListObjectsV2 prefix", new ListObjectsV2Command({ Bucket: bucket, Prefix: "docs/", Delimiter: "/" }));
  check(JSON.stringify((docs.CommonPrefixes ?? []).map((p) => p.Prefix)) === '["docs/sub/"]', "docs prefixes");
  check(JSON.stringify((docs.Contents ?? []).map((o) => o.Key)) === '["docs/a.txt"]', "docs keys");
  const v1 = await send("ListObjects v1", new ListObjectsCommand({ Bucket: bucket, Prefix: "docs/", Delimiter: "/" }));
  check((v1.CommonPrefixes ?? []).length === 1 && (v1.Contents ?? []).length === 1, "v1 listing");
  check(JSON.stringify(await allKeys()) === JSON.stringify(sorted(Object.keys(files))), "paged listing");

  for (const [key, data] of Object.entries(files)) {
    check(sameBytes(await get(key), data), `bytes of ${key}`);
  }
  const part = await get("top.bin", { Range: "bytes=100-4195" });
  check(sameBytes(part, files["top.bin"].subarray(100, 4196)), "ranged GET");

  await send("DeleteObject", new DeleteObjectCommand({ Bucket: bucket, Key: "top.bin" }));
  const rest = Object.keys(files).filter((k) => k !== "top.bin");
  const deleted = await send("DeleteObjects", new DeleteObjectsCommand({
    Bucket: bucket, Delete: { Objects: rest.map((Key) => ({ Key })) },
  }));
  check((deleted.Errors ?? []).length === 0 && (deleted.Deleted ?? []).length === rest.length, "DeleteObjects");
  check((await allKeys()).length === 0, "bucket empty");
  await send("DeleteBucket", new DeleteBucketCommand({ Bucket: bucket }));
}

async function multipart() {
  const data = bytes(multipartSize, 11);
  const parts = Math.ceil(data.length / partSize);
  await send("CreateBucket", new CreateBucketCommand({ Bucket: bucket }));

  // lib-storage's Upload: a stream cut into parts, sent concurrently.
  step = "Upload (lib-storage)";
  const upload = new Upload({
    client: s3, partSize, queueSize: 2, leavePartsOnError: false,
    params: { Bucket: bucket, Key: "big/upload.bin", Body: Readable.from([data]), ContentType: "application/x-big" },
  });
  const done = await upload.done();
  check(done.ETag?.endsWith(`-${parts}"`), `multipart ETag ${done.ETag}`);
  const head = await send("HeadObject", new HeadObjectCommand({ Bucket: bucket, Key: "big/upload.bin" }));
  check(head.ContentLength === data.length, "size after Upload");
  check(head.ContentType === "application/x-big", `content type ${head.ContentType}`);
  check(sameBytes(await get("big/upload.bin"), data), "bytes after Upload");
  const across = await get("big/upload.bin", { Range: `bytes=${partSize - 10}-${partSize + 9}` });
  check(sameBytes(across, data.subarray(partSize - 10, partSize + 10)), "range across parts");

  // The low-level calls, parts uploaded out of order.
  const key = "big/manual.bin";
  const { UploadId } = await send("CreateMultipartUpload", new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const listed = await send("ListMultipartUploads", new ListMultipartUploadsCommand({ Bucket: bucket }));
  check((listed.Uploads ?? []).some((u) => u.UploadId === UploadId), "upload listed");
  const etags = new Array(parts);
  for (const n of [...Array(parts).keys()].reverse()) {
    const res = await send(`UploadPart ${n + 1}`, new UploadPartCommand({
      Bucket: bucket, Key: key, UploadId, PartNumber: n + 1, Body: data.subarray(n * partSize, (n + 1) * partSize),
    }));
    etags[n] = res.ETag;
  }
  const partList = await send("ListParts", new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }));
  check(JSON.stringify(partList.Parts.map((p) => p.ETag)) === JSON.stringify(etags), "ListParts ETags");
  const completed = await send("CompleteMultipartUpload", new CompleteMultipartUploadCommand({
    Bucket: bucket, Key: key, UploadId,
    MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
  }));
  check(completed.ETag === done.ETag, `same parts, same ETag: ${completed.ETag} vs ${done.ETag}`);
  check(sameBytes(await get(key), data), "bytes after CompleteMultipartUpload");

  const { UploadId: abandoned } = await send("CreateMultipartUpload 2", new CreateMultipartUploadCommand({ Bucket: bucket, Key: "big/abandoned.bin" }));
  await send("UploadPart abandoned", new UploadPartCommand({ Bucket: bucket, Key: "big/abandoned.bin", UploadId: abandoned, PartNumber: 1, Body: data.subarray(0, partSize) }));
  await send("AbortMultipartUpload", new AbortMultipartUploadCommand({ Bucket: bucket, Key: "big/abandoned.bin", UploadId: abandoned }));
  const after = await send("ListMultipartUploads 2", new ListMultipartUploadsCommand({ Bucket: bucket }));
  check((after.Uploads ?? []).length === 0, "no uploads left");
  check(JSON.stringify(await allKeys()) === '["big/manual.bin","big/upload.bin"]', "keys after multipart");
}

async function copy() {
  const small = bytes(64 * 1024 + 3, 13);
  const big = bytes(multipartSize, 17);
  await send("CreateBucket", new CreateBucketCommand({ Bucket: bucket }));
  await send("PutObject small", new PutObjectCommand({ Bucket: bucket, Key: "src/small.bin", Body: small, Metadata: { color: "blue" } }));
  await send("PutObject big", new PutObjectCommand({ Bucket: bucket, Key: "src/big.bin", Body: big }));

  const copied = await send("CopyObject", new CopyObjectCommand({ Bucket: bucket, Key: "dst/small.bin", CopySource: `${bucket}/src/small.bin` }));
  check(copied.CopyObjectResult?.ETag === `"${md5(small)}"`, `copy ETag ${copied.CopyObjectResult?.ETag}`);
  const head = await send("HeadObject copy", new HeadObjectCommand({ Bucket: bucket, Key: "dst/small.bin" }));
  check(head.Metadata?.color === "blue", "metadata copied");
  check(sameBytes(await get("dst/small.bin"), small), "bytes of the copy");
  await send("CopyObject REPLACE", new CopyObjectCommand({
    Bucket: bucket, Key: "dst/replaced.bin", CopySource: `${bucket}/src/small.bin`,
    MetadataDirective: "REPLACE", Metadata: { color: "red" }, ContentType: "text/x-replaced",
  }));
  const replaced = await send("HeadObject replaced", new HeadObjectCommand({ Bucket: bucket, Key: "dst/replaced.bin" }));
  check(replaced.Metadata?.color === "red" && replaced.ContentType === "text/x-replaced", "metadata replaced");

  // A large object copied in ranges (UploadPartCopy), as SDK copy managers do.
  const key = "dst/big.bin";
  const { UploadId } = await send("CreateMultipartUpload", new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts = [];
  for (let off = 0, n = 1; off < big.length; off += partSize, n += 1) {
    const end = Math.min(off + partSize, big.length) - 1;
    const res = await send(`UploadPartCopy ${n}`, new UploadPartCopyCommand({
      Bucket: bucket, Key: key, UploadId, PartNumber: n, CopySource: `${bucket}/src/big.bin`, CopySourceRange: `bytes=${off}-${end}`,
    }));
    parts.push({ ETag: res.CopyPartResult.ETag, PartNumber: n });
  }
  await send("CompleteMultipartUpload", new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  check(sameBytes(await get(key), big), "bytes of the part-copied object");
}

const scenarios = { basic, multipart, copy };
const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`usage: node scenario.mjs ${Object.keys(scenarios).join("|")}`);
  process.exit(2);
}
try {
  await scenarios[name]();
  console.log(`ok ${name}`);
} catch (err) {
  const meta = err.$metadata ?? {};
  console.error(`FAILED at step "${step}": ${err.name}: ${err.message}`);
  if (meta.httpStatusCode) console.error(`http status ${meta.httpStatusCode}, request id ${meta.requestId ?? "-"}`);
  if (err.Code) console.error(`S3 error code ${err.Code}`);
  process.exit(1);
}
