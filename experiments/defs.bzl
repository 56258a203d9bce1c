"""experiment() and experiment_group(): experiments as data, one runnable target each.

    experiment(name = "resnet20_fmnist_w4a4", base = FMNIST, weight_bits = 4, act_quantizer = "pact", act_bits = 4)
    experiment(name = "impq_x", base = FMNIST, method = "impq", weight_bits = 4, impq = dict(finetune_epochs = 2))
    experiment_group(name = "quickstart", experiments = [":quickstart_fp32", ":quickstart_w4a4"])

`bazel run //experiments:<name> -- [--data_dir=DIR] [--epochs=N] [--db=PATH] [--force]`
runs it through //experiments:run. The keyword arguments are the keys of
experiments/spec.h (ExperimentSpec); a method's options are a dict named after it
(`impq = dict(...)`, keys in the method's header under lib/alloc). An unknown key or
bad value fails when the target runs, with the list of valid ones. `<name>_spec` is
the JSON file.
"""

def experiment(name, base = None, **spec):
    """base: a dict of shared settings (BUILD files cannot splat **kwargs); spec overrides it.

    A dict value (a method's options) is merged key by key into the base's dict of the
    same name, so a row can change one option of a shared setting.
    """
    merged = dict(base or {})
    for key, value in spec.items():
        if type(value) == "dict" and type(merged.get(key)) == "dict":
            options = dict(merged[key])
            options.update(value)
            merged[key] = options
        else:
            merged[key] = value
    merged["name"] = name
    spec_json = json.encode(merged)
    native.genrule(
        name = name + "_spec",
        outs = [name + ".json"],
        cmd = "cat > $@ <<'MPQ_SPEC_EOF'\n" + spec_json + "\nMPQ_SPEC_EOF",
    )
    native.sh_binary(
        name = name,
        srcs = ["//experiments:run_specs.sh"],
        data = ["//experiments:run", ":" + name + "_spec"],
        args = ["$(location //experiments:run)", "$(location :" + name + "_spec)"],
    )

def experiment_group(name, experiments):
    """Runs several experiment() targets in one process and prints one summary table."""
    specs = [e + "_spec" for e in experiments]
    native.sh_binary(
        name = name,
        srcs = ["//experiments:run_specs.sh"],
        data = ["//experiments:run"] + specs,
        args = ["$(location //experiments:run)"] + ["$(location " + s + ")" for s in specs],
    )

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

def all_specs(name):
    """A filegroup of every experiment()'s spec defined so far in this package (call it last).

    tests/experiments:spec_test parses each, so a target with a bad key fails the tests,
    not a nightly run.
    """
    native.filegroup(
        name = name,
        srcs = [":" + r for r in native.existing_rules().keys() if r.endswith("_spec")],
    )
