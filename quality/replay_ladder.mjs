// The send ladder (static/js/call-quality.js: SendLadder with LADDER_DEFAULTS and
// LEVEL_ENCODINGS as they are now) replayed on recorded telemetry, for
// quality/evaluation.py: the reactive rules are scored by the code that runs in
// the browser, not by a copy of it.
//
// stdin: JSON, a list of series, each a list of the sender's samples of one link
// ({t, rtt, loss_out, bw_out, send_kbps, qlr}, oldest first).
// stdout: JSON, per series per sample, true where the ladder steps down.
import { SendLadder } from "../static/js/call-quality.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
/** @type {Array<Array<import("../static/js/call-quality.js").SenderView>>} */
const series = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const out = series.map((views) => {
  const ladder = new SendLadder();
  return views.map((v) => {
    const step = ladder.observe(v);
    return step !== null && step.reason !== "recovered";
  });
});
process.stdout.write(JSON.stringify(out));
