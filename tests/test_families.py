"""The family registry and the life cycle: one contract, one owner for every size,
the same model under the same name in the command line and in the lessons."""

import ast
import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from tutorial_lib import cli, families, runs
from tutorial_lib.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tutorial_lib"
# What runs.train (and a lesson's checkpoint-aware train) takes besides a family's own options.
RUN_ARGUMENTS = {"profile", "dataset", "seed", "out_dir", "callbacks", "evaluate", "stages", "key"}


@pytest.mark.parametrize("name", families.names())
def test_every_family_module_defines_the_contract(name):
    family = families.get(name)
    module = family.load()
    missing = [attribute for attribute in family.contract() if not hasattr(module, attribute)]
    assert not missing, f"{module.__name__} lacks {missing}"
    assert set(module.CONFIGS) <= set(families.FAMILIES), "CONFIGS is keyed by model names"
    assert set(module.CONFIGS[name]) == set(PROFILES), "then by every profile"


def test_an_encoder_family_must_define_encode_and_decode():
    assert families.get("vae").contract()[-2:] == ("encode", "decode")
    assert families.get("autoencoder").contract()[-3:] == ("encode", "decode", "preview")
    assert families.get("gan").contract() == families.CONTRACT


def _contract_call(function: str) -> tuple[list, dict]:
    """Placeholder arguments for a call of the contract's ``function`` as
    :class:`families.FamilyModule` writes it: every parameter it names, none of ``**``."""
    protocols = (families.EncoderFamilyModule, families.PreviewFamilyModule)
    protocol = next(p for p in protocols if hasattr(p, function))
    signature = inspect.signature(getattr(protocol, function))
    args, kwargs = [], {}
    for parameter in list(signature.parameters.values())[1:]:  # not self
        if parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
            args.append(object())
        elif parameter.kind is parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = object()
    return args, kwargs


@pytest.mark.parametrize("name", families.names())
def test_every_family_module_accepts_the_contracts_calls(name):
    """The contract by signature: each function of a family's module takes the call the life
    cycle makes (all the parameters :class:`families.FamilyModule` names)."""
    module = families.get(name).load()
    for function in families.get(name).contract()[1:]:
        args, kwargs = _contract_call(function)
        try:
            inspect.signature(getattr(module, function)).bind(*args, **kwargs)
        except TypeError as error:
            pytest.fail(f"{module.__name__}.{function} does not take the contract's call: {error}")


def test_the_contract_check_rejects_a_function_that_misses_a_parameter():
    args, kwargs = _contract_call("evaluate")

    def evaluate(model, config, *, dataset):  # no profile
        return {}

    with pytest.raises(TypeError, match="profile"):
        inspect.signature(evaluate).bind(*args, **kwargs)


@pytest.mark.parametrize("name", families.names())
@pytest.mark.parametrize("profile", list(PROFILES))
def test_the_family_config_owns_every_training_size(name, profile):
    config = families.get(name).config(profile)
    fields = {field.name for field in dataclasses.fields(config)}
    assert {"epochs", "steps"} & fields, "how long it trains"
    assert "batch_size" in fields, "how many examples a step takes"
    if families.get(name).samples != "text":
        assert "train_examples" in fields, "how many training images"


def test_unknown_names_list_the_choices():
    with pytest.raises(families.UnknownFamilyError, match="autoencoder, vae"):
        families.get("unicorn")


def test_entries_describe_what_they_are():
    vae, gpt = families.get("vae"), families.get("transformer")
    assert (vae.likelihood, vae.likelihood_unit, vae.dimensions) == ("bound", "nats per image", 784)
    assert (gpt.samples, gpt.likelihood, gpt.datasets) == ("text", "exact", ("tinyshakespeare",))
    assert families.get("cgan").conditional and not families.get("gan").conditional
    assert families.get("autoencoder").samples == "none"
    assert "transformer" not in families.image_families()
    with pytest.raises(ValueError, match="unit"):
        families.Family("x", "m", "t", "00", "images", likelihood="exact")


def _is_module(name: str) -> bool:
    """Whether ``name`` (``tutorial_lib.grading.probes``) is a module or package of ours."""
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The tutorial_lib modules a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("tutorial_lib")
        ):
            # `from tutorial_lib.grading import probes_vae` imports the module probes_vae;
            # `from tutorial_lib.grading import grade` a name of the package itself.
            for alias in node.names:
                module = f"{node.module}.{alias.name}"
                found.add(module if _is_module(module) else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tutorial_lib.")}
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_package_has_no_import_circle():
    graph = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}
    graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    state, path = {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                cycle = path[path.index(dep) :] + [dep]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def _lesson_trainings() -> list[tuple[str, str, dict]]:
    """Every ``lesson.train("NAME", ..., option=value)`` call in the lessons (the
    checkpoint-aware :func:`tutorial_lib.runs.train`), with the options given as literals."""
    calls = []
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            for node in ast.walk(ast.parse(source)):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "train"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("runs", "lesson")
                ):
                    name = ast.literal_eval(node.args[0])
                    options = {
                        kw.arg: (
                            ast.literal_eval(kw.value) if kw.arg not in RUN_ARGUMENTS else None
                        )
                        for kw in node.keywords
                    }
                    calls.append((notebook.name, name, options))
    return calls


def test_every_model_name_is_trained_by_a_lesson_through_the_life_cycle():
    trained = {name for _, name, _ in _lesson_trainings()}
    assert trained == set(families.names())


@pytest.mark.parametrize("call", _lesson_trainings(), ids=lambda c: f"{c[0]}:{c[1]}")
def test_the_cli_trains_what_the_lesson_trains(call):
    """The lesson's call and `python -m tutorial_lib train NAME [flags]` ask for one config."""
    notebook, name, given = call
    family = families.get(name)
    own = {option.dest: option for option in family.options_for("train")}
    options = {key: value for key, value in given.items() if key not in RUN_ARGUMENTS}
    assert set(options) <= set(own), f"{notebook} sets {set(options) - set(own)} for {name}"
    flags = []
    for key, value in options.items():
        flags += [own[key].flag] if own[key].switch else [own[key].flag, str(value)]
    args = cli.build_parser().parse_args(["train", name, "--out", "run", *flags])
    for profile in PROFILES:
        assert runs.config_of(name, profile, **cli.family_options(args)) == runs.config_of(
            name, profile, **options
        )


def test_a_run_record_has_the_same_keys_for_every_family(tmp_path):
    record = runs.train("autoencoder", "fast", out_dir=tmp_path / "ae").record
    assert set(record) == set(runs.RECORD_KEYS)
    assert record["likelihood"] is None and record["frechet_distance"] is None
    assert record["test_mse"] > 0 and record["train_legs"] == 1
    loaded = runs.load(tmp_path / "ae")
    assert loaded.config == families.get("autoencoder").config("fast")
    assert loaded.record == json.loads((tmp_path / "ae" / "metrics.json").read_text())
    assert len(loaded.history["loss"]) == loaded.config.epochs


def test_recommended_recipes_name_the_textbook_model_of_their_lesson():
    recipes = {name: family for name, family in families.FAMILIES.items() if family.improves}
    assert set(recipes) == {"vae_mixture_prior", "cgan_r1_ema", "latent_diffusion_v"}
    for name, family in recipes.items():
        textbook = families.get(family.improves)
        assert textbook.improves is None, name
        # the same lesson, or its second part (03_gan and 03b_gan_what_helps)
        assert textbook.lesson[:2] == family.lesson[:2], name
        assert family.samples == textbook.samples == "images"
        assert name in families.recommended(family.improves)
    assert families.recommended("transformer") == []
