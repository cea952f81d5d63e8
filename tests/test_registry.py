"""imagenet_jax.registry: registering, lookup errors, metadata, per-entry checks and lazy discovery."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from imagenet_jax.errors import ConfigError, UserFacingError
from imagenet_jax.registry import Registry, UnknownNameError, discover_modules


def _colors() -> Registry[int]:
    colors: Registry[int] = Registry("color", config_key="color")
    colors.register("red", 1, wavelength=700)
    colors.register("green", 2)

    @colors.register("blue", wavelength=450)
    def blue() -> int:
        return 3

    return colors


def test_register_as_call_and_decorator():
    colors = _colors()
    assert colors.get("red") == 1
    assert colors.get("blue")() == 3
    assert colors.names() == ["blue", "green", "red"]
    assert list(colors) == ["blue", "green", "red"]
    assert len(colors) == 3
    assert "red" in colors and "purple" not in colors and ["red"] not in colors
    assert [name for name, _ in colors.items()] == ["blue", "green", "red"]


def test_duplicate_name_is_refused():
    colors = _colors()
    with pytest.raises(ValueError, match="color 'red' is registered twice"):
        colors.register("red", 4)
    assert colors.get("red") == 1
    with pytest.raises(ValueError, match="non-empty string"):
        colors.register("", 4)


def test_unknown_name_names_the_config_key_and_close_matches():
    with pytest.raises(UnknownNameError) as caught:
        _colors().get("gren")
    message = str(caught.value)
    assert message == ("config.color='gren' is not a registered color. Did you mean green? "
                       "Registered: blue, green, red.")
    assert "\n" not in message
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, UserFacingError)
    assert isinstance(caught.value, LookupError)
    assert caught.value.kind == "color" and caught.value.name == "gren" and caught.value.close == ("green",)


def test_unknown_name_key_override_and_no_key():
    colors = _colors()
    with pytest.raises(UnknownNameError, match=r"^config\.palette\.first='x' is not a registered color\. Registered"):
        colors.get("x", key="palette.first")
    anonymous: Registry[int] = Registry("shade")
    anonymous.register("dark", 0)
    with pytest.raises(UnknownNameError, match=r"^'drak' is not a registered shade\. Did you mean dark\?"):
        anonymous.get("drak")
    with pytest.raises(UnknownNameError, match="No shade is registered"):
        Registry("shade").get("x")
    with pytest.raises(UnknownNameError, match=r"config.color=3 is not"):
        colors.get(3)  # type: ignore[arg-type]


def test_custom_error_type_keeps_old_exception_types_catchable():
    class UnknownColorError(UnknownNameError, ValueError):
        """Old callers catch ValueError."""

    colors: Registry[int] = Registry("color", config_key="color", error=UnknownColorError)
    with pytest.raises(ValueError):
        colors.get("red")
    with pytest.raises(ConfigError):
        colors.get("red")
    with pytest.raises(TypeError, match="must subclass UnknownNameError"):
        Registry("color", error=ValueError)  # type: ignore[arg-type]


def test_fallback_and_also():
    numbers: Registry[int] = Registry("number", config_key="n", fallback=lambda name: int(name) if name.isdigit()
                                      else None, also=" or a decimal literal")
    numbers.register("one", 1)
    assert numbers.get("one") == 1 and numbers.get("42") == 42
    assert "42" not in numbers
    with pytest.raises(UnknownNameError, match=r"config.n='on' is not a registered number or a decimal literal\. "
                                               r"Did you mean one\?"):
        numbers.get("on")


def test_fallback_names_are_near_matches_listed_after_the_registered_ones():
    words: Registry[str] = Registry("word", config_key="word.name", fallback=lambda name: None,
                                    fallback_names=lambda: ["alpha", "omega", "zeta"])
    words.register("zeta", "z")
    with pytest.raises(UnknownNameError) as caught:
        words.get("omeg")
    assert str(caught.value) == ("config.word.name='omeg' is not a registered word. Did you mean omega? "
                                 "Registered: zeta. Also valid: alpha, omega.")


def test_info_is_per_entry_metadata():
    colors = _colors()
    assert colors.info("red") == {"wavelength": 700}
    assert colors.info("green") == {}
    with pytest.raises(TypeError):
        colors.info("red")["wavelength"] = 1  # type: ignore[index]
    with pytest.raises(UnknownNameError, match="config.color='rd'"):
        colors.info("rd")


def test_check_runs_the_entry_validator_with_context():
    calls = []

    def positive(options: dict, *, where: str = "") -> None:
        calls.append((options, where))
        if options.get("size", 1) <= 0:
            raise ConfigError(f"{where}: size={options['size']} must be > 0")

    shapes: Registry[str] = Registry("shape", config_key="shape")
    shapes.register("square", "S", check=positive)
    shapes.register("circle", "C")
    shapes.check("square", {"size": 2}, where="config.shape")
    with pytest.raises(ConfigError, match="config.shape: size=0 must be > 0"):
        shapes.check("square", {"size": 0}, where="config.shape")
    shapes.check("circle", {"size": 0})  # no validator: nothing to check
    shapes.check("square")
    assert calls[-1] == ({}, "")
    assert shapes.has_check("square") and not shapes.has_check("circle")
    with pytest.raises(UnknownNameError, match="config.shape='sqare'.*Did you mean square"):
        shapes.check("sqare", {})


def test_unknown_builds_the_error_for_own_lookups():
    error = _colors().unknown("rde", valid=["red", "rose"])
    assert isinstance(error, UnknownNameError)
    assert str(error) == "config.color='rde' is not a registered color. Did you mean red? Registered: red, rose."
    error = _colors().unknown("rde", subject="config.palette: entry 'rde'")
    assert str(error).startswith("config.palette: entry 'rde' is not a registered color. Did you mean red?")


def test_unregister_removes_a_temporary_entry():
    colors = _colors()
    colors.register("cyan", 9, check=lambda options: None, hue=180)
    assert colors.unregister("cyan") == 9
    assert "cyan" not in colors and not colors.has_check("cyan")
    colors.register("cyan", 10)  # its name is free again
    assert colors.info("cyan") == {}
    with pytest.raises(KeyError):
        colors.unregister("magenta")


def _write_package(root, name: str, modules: dict[str, str]) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))


def test_discovery_imports_every_module_of_the_package_on_first_lookup(tmp_path, monkeypatch):
    registry_source = """
        from imagenet_jax.registry import Registry
        THINGS = Registry("thing", config_key="thing", discover="{name}")
    """
    _write_package(tmp_path, "discover_pkg", {
        "things": registry_source.format(name="discover_pkg"),
        "alpha": "from discover_pkg.things import THINGS\nTHINGS.register('alpha', 1)\n",
        "beta": "from discover_pkg.things import THINGS\nTHINGS.register('beta', 2, size=7)\n",
        "_private": "raise RuntimeError('private modules are not discovered')\n",
        "__main__": "raise RuntimeError('__main__ is not discovered')\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    from discover_pkg.things import THINGS  # type: ignore[import-not-found]

    assert "discover_pkg.alpha" not in sys.modules  # declaring the registry imports nothing
    assert THINGS.names() == ["alpha", "beta"]
    assert "discover_pkg.alpha" in sys.modules and "discover_pkg.beta" in sys.modules
    assert THINGS.info("beta") == {"size": 7}
    assert discover_modules("discover_pkg") == ["discover_pkg", "discover_pkg.alpha", "discover_pkg.beta",
                                                "discover_pkg.things"]
    assert discover_modules("discover_pkg.alpha") == ["discover_pkg.alpha"]
    for module in [m for m in sys.modules if m.startswith("discover_pkg")]:
        monkeypatch.delitem(sys.modules, module)


def test_discovery_failure_is_retried_not_swallowed(tmp_path, monkeypatch):
    _write_package(tmp_path, "broken_pkg", {
        "things": "from imagenet_jax.registry import Registry\nTHINGS = Registry('thing', discover='broken_pkg')\n",
        "bad": "import broken_pkg.flag\nif not broken_pkg.flag.OK:\n    raise ImportError('bad module')\n",
        "flag": "OK = False\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    from broken_pkg.things import THINGS  # type: ignore[import-not-found]

    with pytest.raises(ImportError, match="bad module"):
        THINGS.names()
    sys.modules["broken_pkg.flag"].OK = True
    assert THINGS.names() == []
    for module in [m for m in sys.modules if m.startswith("broken_pkg")]:
        monkeypatch.delitem(sys.modules, module)


def test_importing_the_registry_module_is_cheap():
    code = ("import sys, imagenet_jax.registry; heavy = [m for m in ('jax', 'tensorflow', 'flax') if m in sys.modules];"
            " print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
