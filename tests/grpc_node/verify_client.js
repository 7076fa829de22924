#!/usr/bin/env node
// A gantry.v1.FaceVerification client built from protos/gantry/v1/faces.proto alone.
//
//   GANTRY_GRPC=127.0.0.1:50051 node tests/grpc_node/verify_client.js a.jpg b.jpg
//
// Calls Verify(a, b) and Detect(a), then prints one JSON object on stdout:
//   {"verify": <VerifyResponse>, "detect": {"width", "height", "face_count"}}
// Any failure prints the gRPC status (and the gantry-error-code trailer) on stderr and
// exits non-zero. Used by tests/gateway/test_grpc_node.py; install with
// `npm ci --prefix tests/grpc_node`.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "protos");
const PROTO_FILE = "gantry/v1/faces.proto";
const DEADLINE_MS = 120 * 1000;

function usage(message) {
  process.stderr.write(`${message}\nusage: GANTRY_GRPC=host:port node verify_client.js IMAGE_A IMAGE_B\n`);
  process.exit(2);
}

function describe(error) {
  const code = error.metadata ? error.metadata.get("gantry-error-code") : [];
  const name = Object.keys(grpc.status).find((k) => grpc.status[k] === error.code) || error.code;
  return `gRPC ${name}: ${error.details || error.message}` + (code.length ? ` (gantry-error-code ${code[0]})` : "");
}

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + DEADLINE_MS }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

async function main() {
  const target = process.env.GANTRY_GRPC;
  if (!target) usage("GANTRY_GRPC is not set");
  const [imageA, imageB] = process.argv.slice(2);
  if (!imageA || !imageB) usage("two image paths are needed");

  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // image_a, face_a, ... as in the .proto and the REST bodies
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const gantry = grpc.loadPackageDefinition(definition).gantry.v1;
  const client = new gantry.FaceVerification(target, grpc.credentials.createInsecure());
  try {
    const dataA = fs.readFileSync(imageA);
    const dataB = fs.readFileSync(imageB);
    const verify = await call(client, "Verify", { image_a: dataA, image_b: dataB, id: "node" });
    const detect = await call(client, "Detect", { image: dataA });
    const out = {
      verify,
      detect: { width: detect.width, height: detect.height, face_count: detect.faces.length },
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    client.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error.code !== undefined && error.details !== undefined ? describe(error) : error.stack || error}\n`);
  process.exit(1);
});
