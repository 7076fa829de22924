// face-api.js's FaceLandmark68Net, run by face-api itself on tfjs's CPU backend.
// argv: <model dir> <crops.f32> <count> <size>. The crops file holds `count` RGB images of
// size x size pixels, float32 in 0..255, NHWC. Prints one JSON list per crop: the 68 points
// relative to the crop (face-api's `relativePositions`), as [x, y] pairs.
const fs = require('fs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

async function main() {
  const [modelDir, cropsFile, countArg, sizeArg] = process.argv.slice(2);
  const count = Number(countArg);
  const size = Number(sizeArg);
  const tf = faceapi.tf;
  await tf.setBackend('cpu');
  await tf.ready();
  await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  const bytes = fs.readFileSync(cropsFile);
  const pixels = new Float32Array(bytes.buffer, bytes.byteOffset, count * size * size * 3);
  const answers = [];
  for (let i = 0; i < count; i++) {
    const start = i * size * size * 3;
    const crop = tf.tensor3d(pixels.slice(start, start + size * size * 3), [size, size, 3]);
    const found = await faceapi.nets.faceLandmark68Net.detectLandmarks(crop);
    answers.push(found.relativePositions.map((p) => [p.x, p.y]));
    crop.dispose();
  }
  process.stdout.write(JSON.stringify(answers));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
