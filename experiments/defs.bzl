"""experiment(), experiment_group(), paper_table() and leaderboard(): experiments as data.

    experiment(name = "resnet20_fmnist_w4a4", base = FMNIST, weight_bits = 4, act_quantizer = "pact", act_bits = 4)
    experiment(name = "impq_x", base = FMNIST, method = "impq", weight_bits = 4, impq = dict(finetune_epochs = 2))
    experiment_group(name = "quickstart", experiments = [":quickstart_fp32", ":quickstart_w4a4"])

`bazel run //experiments:<name> -- [--data_dir=DIR] [--epochs=N] [--db=PATH] [--force]`
runs it through //experiments:run; `-- --executor=slurm` submits it to Slurm instead
(experiments/slurm.sh, docs/scale.md). The keyword arguments are the keys of
experiments/spec.h (ExperimentSpec); a method's options are a dict named after it
(`impq = dict(...)`, keys in the method's header under lib/alloc). An unknown key or
bad value fails when the target runs, with the list of valid ones. `<name>_spec` is
the JSON file.
"""

def _merge(name, base, spec):
    """base's settings overridden by spec's; a dict value is merged key by key."""
    merged = dict(base or {})
    for key, value in spec.items():
        if type(value) == "dict" and type(merged.get(key)) == "dict":
            options = dict(merged[key])
            options.update(value)
            merged[key] = options
        else:
            merged[key] = value
    merged["name"] = name
    return merged

# experiment(slurm = dict(...)): what one Slurm job of the experiment asks for under
# --executor=slurm (docs/scale.md). Not part of the spec: resources never change a result.
_SLURM_KEYS = {
    "cpus": ("int", "--cpus-per-task=%s"),
    "gpus": ("int", None),  # --gres=gpu:N, or --gpus-per-task=N with tasks > 1
    "mem": ("string", "--mem=%s"),
    "time": ("string", "--time=%s"),
    "tasks": ("int", "--ntasks=%s"),
}

def _sbatch_options(name, slurm):
    """slurm = dict(cpus, gpus, mem, time, tasks) as sbatch options, one per line."""
    lines = []
    for key in sorted(slurm.keys()):
        if key not in _SLURM_KEYS:
            fail("experiment %s: unknown slurm key '%s'; valid: %s" % (name, key, ", ".join(sorted(_SLURM_KEYS.keys()))))
        kind, pattern = _SLURM_KEYS[key]
        value = slurm[key]
        if type(value) != kind:
            fail("experiment %s: slurm %s = %r: expected a %s" % (name, key, value, kind))
        if kind == "int" and value < (0 if key == "gpus" else 1):
            fail("experiment %s: slurm %s = %d: expected at least %d" % (name, key, value, 0 if key == "gpus" else 1))
        if kind == "string" and (value == "" or " " in value or "'" in value):
            fail("experiment %s: slurm %s = %r: expected one word, e.g. 32G or 2-00:00:00" % (name, key, value))
        if key == "gpus":
            if value > 0:
                lines.append(("--gpus-per-task=%d" if slurm.get("tasks", 1) > 1 else "--gres=gpu:%d") % value)
        else:
            lines.append(pattern % value)
    return lines

def _split_slurm(merged):
    """(the spec without its slurm key, the slurm dict)."""
    spec = dict(merged)
    slurm = spec.pop("slurm", None) or {}
    if type(slurm) != "dict":
        fail("experiment %s: slurm = %r: expected a dict(cpus, gpus, mem, time, tasks)" % (merged["name"], slurm))
    return spec, slurm

def experiment(name, base = None, **spec):
    """base: a dict of shared settings (BUILD files cannot splat **kwargs); spec overrides it.

    A dict value (a method's options) is merged key by key into the base's dict of the
    same name, so a row can change one option of a shared setting. `slurm = dict(cpus = 8,
    gpus = 1, mem = "32G", time = "1-00:00:00", tasks = 1)` (any of them) is what its job
    asks for under --executor=slurm; it is kept out of the spec (and so of the run identity).
    """
    merged, slurm = _split_slurm(_merge(name, base, spec))
    spec_json = json.encode(merged)
    native.genrule(
        name = name + "_spec",
        outs = [name + ".json"],
        cmd = "cat > $@ <<'MPQ_SPEC_EOF'\n" + spec_json + "\nMPQ_SPEC_EOF",
    )
    native.genrule(
        name = name + "_slurm",
        outs = [name + ".slurm"],
        cmd = "cat > $@ <<'MPQ_SLURM_EOF'\n" + "\n".join(_sbatch_options(name, slurm)) + "\nMPQ_SLURM_EOF",
    )
    _runner_binary(name, [":" + name + "_spec"], [":" + name + "_slurm"])

# The executors' files every experiment target carries (run_specs.sh's first four arguments).
_EXECUTOR_DATA = ["//experiments:run", "//results:query", "//experiments:slurm.sh", "//experiments:slurm_task.sh"]
_EXECUTOR_ARGS = ["$(location //experiments:run)", "$(location //results:query)",
                  "$(location //experiments:slurm.sh)", "$(location //experiments:slurm_task.sh)"]

def _runner_binary(name, specs, slurm_files):
    native.sh_binary(
        name = name,
        srcs = ["//experiments:run_specs.sh"],
        data = _EXECUTOR_DATA + specs + slurm_files,
        args = _EXECUTOR_ARGS + ["$(location " + s + ")" for s in specs],
    )

def experiment_group(name, experiments):
    """Runs several experiment() targets in one process and prints one summary table
    (or, with --executor=slurm, one Slurm job each)."""
    _runner_binary(name, [e + "_spec" for e in experiments], [e + "_slurm" for e in experiments])

def paper_table(name, paper, table, dataset, experiments):
    """Groups experiment targets into one table of a paper, for the report and the nightly.

    paper:   the file stem in experiments/papers/ (e.g. "impq2022");
    table:   the paper's table as named in that file's rows (e.g. "CIFAR-10");
    dataset: the dataset the paper used; rows run on another one are marked in the report;
    experiments: experiment() targets; each row of ours sits under its spec's paper_row.

    Writes <name>.table.json ({name, paper, table, dataset, experiments: [spec, ...]}) for
    //reports:render, and makes `bazel run //experiments:<name>` run the table's experiments.
    """
    specs = [e + "_spec" for e in experiments]
    head = json.encode({"name": name, "paper": paper, "table": table, "dataset": dataset})
    native.genrule(
        name = name + "_table",
        srcs = specs,
        outs = [name + ".table.json"],
        cmd = ("(printf '%s' '" + head[:-1] + ",\"experiments\":['; sep=''; " +
               "for f in $(SRCS); do printf '%s' \"$$sep\"; cat \"$$f\"; sep=','; done; printf ']}\\n') > $@"),
    )
    experiment_group(name = name, experiments = experiments)

def leaderboard(name, base, budgets, methods, seeds, epochs, baseline = "uniform"):
    """One protocol, every method: one experiment per method x budget x seed, and a board.

    base:     settings every run shares (model, dataset, training-set size, batch, lr);
    budgets:  budget labels, e.g. ["w2a2", "w4a4"]: the budget of each is the BitOps and
              weight size of the baseline's run at it (the same for every seed);
    methods:  {method label: {budget label: settings}}: what makes the method land at or
              under that budget (a method's knob: its bits, a target, a budget), merged
              into base as experiment() merges; every method needs every budget. A list
              of settings is a knob search: each is run for every seed
              (<name>_<method>_<budget>_k<i>_s<seed>), and the report takes per seed the
              one with the best validation top-1 among those at or under the budget
              (reports/leaderboard.h); not for the baseline;
    seeds:    at least 3 (one seed is an anecdote); run r of a method uses seed r;
    epochs:   the total epoch budget every run spends; the report flags a run whose
              method accounts for another number (MethodOptions::EpochBudget);
    baseline: the method every other is tested against, paired by seed.

    Targets: <name>_<method>_<budget>_s<seed> (each an experiment()), <name> (all of them,
    `bazel run //experiments:<name>`), and <name>.board.json ({name, epochs, baseline,
    budgets, seeds, entries: [{method, budget, seed, spec}]}) for //reports:render.
    """
    if len(seeds) < 3:
        fail("leaderboard %s: %d seeds; at least 3 are needed for an interval" % (name, len(seeds)))
    if baseline not in methods:
        fail("leaderboard %s: the baseline '%s' is not among the methods %s" % (name, baseline, sorted(methods.keys())))
    entries = []
    for method, per_budget in methods.items():
        for budget in budgets:
            if budget not in per_budget:
                fail("leaderboard %s: method '%s' has no settings for budget '%s'" % (name, method, budget))
            settings = per_budget[budget]
            search = type(settings) == "list"
            if search and (len(settings) < 2 or method == baseline):
                fail("leaderboard %s: method '%s' at '%s': a knob search needs at least 2 settings and is not for the baseline" % (name, method, budget))
            for seed in seeds:
                for k, candidate in enumerate(settings if search else [settings]):
                    target = ("%s_%s_%s_k%d_s%d" % (name, method, budget, k, seed)) if search else ("%s_%s_%s_s%d" % (name, method, budget, seed))
                    spec = dict(candidate)
                    spec["seed"] = seed
                    experiment(name = target, base = base, **spec)
                    entry = {"method": method, "budget": budget, "seed": seed, "spec": _split_slurm(_merge(target, base, spec))[0]}
                    if search:
                        entry["candidate"] = k
                    entries.append(entry)
    board = {"name": name, "epochs": epochs, "baseline": baseline, "budgets": budgets, "seeds": seeds, "entries": entries}
    native.genrule(
        name = name + "_board",
        outs = [name + ".board.json"],
        cmd = "cat > $@ <<'MPQ_BOARD_EOF'\n" + json.encode(board) + "\nMPQ_BOARD_EOF",
    )
    experiment_group(name = name, experiments = [":" + e["spec"]["name"] for e in entries])

def all_specs(name):
    """A filegroup of every experiment()'s spec defined so far in this package (call it last).

    tests/experiments:spec_test parses each, so a target with a bad key fails the tests,
    not a nightly run.
    """
    native.filegroup(
        name = name,
        srcs = [":" + r for r in native.existing_rules().keys() if r.endswith("_spec")],
    )
