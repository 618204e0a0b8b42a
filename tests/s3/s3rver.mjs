// Starts s3rver (the npm S3 emulator pinned in tests/package.json) on 127.0.0.1 and a free port,
// storing objects under DIR, with the named buckets created; prints {"port": N} on stdout once it
// listens, and exits when its standard input closes (so it never outlives the process that
// started it). Used by tests/s3/s3_front.py.
//
//   node tests/s3/s3rver.mjs DIR BUCKET...
import S3rver from "s3rver";

const [dir, ...buckets] = process.argv.slice(2);
if (!dir) {
  console.error("usage: s3rver.mjs DIR BUCKET...");
  process.exit(2);
}
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  directory: dir,
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
const address = await server.run();
process.stdout.write(JSON.stringify({ port: address.port }) + "\n");
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();
