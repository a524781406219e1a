import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  FEATURES, Predictor, features, modelCheck, modelLoad, probability, windowOf,
} from "../../static/js/predict.js";

// Written by tests/test_quality_features.py from quality/features.py: the browser's
// copy of the features must give the same numbers as the Python that trains on them.
const vectors = JSON.parse(readFileSync(new URL("./quality-vectors.json", import.meta.url), "utf8"));

const close = (a, b) => Math.abs(a - b) <= 1e-12 + 1e-12 * Math.abs(b);

test("features and probabilities equal Python's on every exported window", () => {
  assert.ok(vectors.cases.length > 10);
  for (const [i, c] of vectors.cases.entries()) {
    const x = features(windowOf(c.window));
    assert.equal(x.length, FEATURES.length);
    x.forEach((v, k) => assert.ok(close(v, c.features[k]), `case ${i} ${FEATURES[k]}: ${v} vs ${c.features[k]}`));
    const p = probability(vectors.model, x);
    assert.ok(close(p, c.p), `case ${i} p: ${p} vs ${c.p}`);
  }
});

test("the feature names are Python's, in order", () => {
  assert.deepEqual(FEATURES, vectors.model.features);
});

test("a model for other features is refused", () => {
  assert.throws(() => modelCheck({ ...vectors.model, features: ["rtt"] }), /not a model for these features/);
  assert.throws(() => modelCheck({ ...vectors.model, scale: vectors.model.scale.map(() => 0) }), /not a model/);
  assert.throws(() => modelCheck(null), /not a model/);
});

test("modelLoad fetches the JSON and refuses an error answer", async () => {
  const ok = async () => /** @type {any} */ ({ ok: true, status: 200, json: async () => vectors.model });
  assert.deepEqual((await modelLoad("/m.json", /** @type {any} */ (ok))).coef, vectors.model.coef);
  const missing = async () => /** @type {any} */ ({ ok: false, status: 404, json: async () => ({}) });
  await assert.rejects(modelLoad("/m.json", /** @type {any} */ (missing)), /answered 404/);
});

test("the predictor keeps one window per peer and ignores a sample it already has", () => {
  const pred = new Predictor(vectors.model);
  const sim = vectors.cases.find((c) => c.window.length === 5).window;
  let out;
  for (const s of sim) out = pred.observe([{ ...s, peer: "bob" }, { peer: "carol", t: s.t }]);
  assert.ok(close(out.get("bob"), probability(vectors.model, features(sim))));
  const carol = pred.windows.get("carol");
  assert.equal(carol.length, 5);
  assert.ok(carol.every((s) => s.peer === "carol"));
  assert.ok(close(out.get("carol"), probability(vectors.model, features(carol))));
  const again = pred.observe([{ ...sim[4], peer: "bob" }]);
  assert.equal(pred.windows.get("bob").length, 5);
  assert.ok(close(again.get("bob"), out.get("bob")));
  pred.forget("bob");
  assert.equal(pred.predict("bob"), 0);
});

test("the call's predictor is the model on the link's newest window; null without samples", async () => {
  const { modelPredictor } = await import("../../static/js/predict.js");
  const sim = vectors.cases.find((c) => c.window.length === 5).window;
  const fn = modelPredictor(vectors.model);
  assert.equal(fn([]), null);
  const older = [{ ...sim[0], t: sim[0].t - 60000 }];
  assert.ok(close(fn([...older, ...sim]), probability(vectors.model, features(sim))));
});

test("the shipped model file is a model for these features", () => {
  const shipped = JSON.parse(readFileSync(new URL("../../static/js/quality-model.json", import.meta.url), "utf8"));
  const m = modelCheck(shipped);
  assert.ok(m.threshold > 0 && m.threshold < 1);
  const p = probability(m, features([]));
  assert.ok(p >= 0 && p <= 1);
});
