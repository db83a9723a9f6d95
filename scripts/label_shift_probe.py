"""Evaluate methods on scenarios of a benchmark directly (no store, no result files) and print one line each.

    PYTHONPATH=src python scripts/label_shift_probe.py BENCHMARK SCENARIO[,SCENARIO...] '[["mlls", {}], ["bbse", {"soft": true}]]'

Prints accuracy, NLL and prior L1 error (when the method reports a prior and the scenario a true one).
Protocol per_scenario, seed 0, threads 1.
"""
import copy
import json
import sys
import time

import torch

torch.set_num_threads(1)

from shiftbench.evaluate import compute_metrics, run_stream
from shiftbench.evaluate.metrics import prior_estimation_error
from shiftbench.methods import SourceContext, create_method
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.workspace import Workspace

bench = load_benchmark(sys.argv[1])
ws = Workspace(torch.device("cpu"), progress=False)
scen = sys.argv[2].split(",")
methods = json.loads(sys.argv[3])
for sname in scen:
    sc = bench.scenario(sname)
    sm = ws.model(bench, sc, None, 0)
    segs = ws.segments(bench, sc, 0)
    base = ws.base_logits(bench, sc, 0, sm)
    for spec, params in methods:
        m = create_method(spec, params)
        tr = ws.train_split(bench, sc, "source_train", 0)
        ctx = SourceContext(ws.train_split(bench, sc, "source_val", 0), tr.class_prior(), ws.device, 0, sm.model, source_train=tr, model_sha256=sm.sha256,
            val_logits_fn=lambda: ws.val_logits(bench, sc, 0, sm), target_priors=[(len(s), torch.tensor(s.meta.get("target_prior", s.class_prior().tolist()))) for s in segs])
        model = sm.model if m.logit_only else copy.deepcopy(sm.model)
        t = time.time()
        torch.manual_seed(0)
        m.setup(model, ctx)
        lg = run_stream(m, segs, "per_scenario", 64, ws.device, base if m.logit_only else None)
        met = compute_metrics(lg[0], segs[0].labels)
        pe = prior_estimation_error(m.describe(), segs[0].meta, ctx.source_prior)
        print(f"{sname:28s} {spec:12s} {json.dumps(params):50s} acc={met['accuracy']:.4f} nll={met['nll']:.3f} l1={pe.get('prior_l1', float('nan')):.3f} {time.time()-t:.1f}s", flush=True)
