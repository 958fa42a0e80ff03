"""SpeechToTextTool through a real transformers ASR pipeline, on a tiny CTC model built here (no download)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from codeloop import AgentAudio, SpeechToTextTool

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is built here; nothing may be fetched
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_asr_model(tmp_path_factory):
    """A 1-layer Wav2Vec2 CTC model whose output layer always picks the letter 'a'."""
    folder = tmp_path_factory.mktemp("tiny-asr")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "a": 5, "b": 6}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    extractor = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True)
    transformers.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = transformers.Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2, pad_token_id=0, do_stable_layer_norm=False,
    )
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC(config)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.fill_(-10.0)
        model.lm_head.bias[vocab["a"]] = 10.0
    model.save_pretrained(folder)
    return str(folder)


def test_transcribes_paths_samples_and_agent_audio(tiny_asr_model, tmp_path):
    stt = SpeechToTextTool(model=tiny_asr_model)
    assert stt.name == "transcriber" and stt.inputs["audio"]["type"] == "audio" and stt.output_type == "string"
    clip = AgentAudio(np.sin(np.linspace(0, 200, 16000)).astype(np.float32) * 0.3, samplerate=16000)
    assert stt(clip) == "a"                      # an AgentAudio
    assert stt(audio=clip.to_string()) == "a"    # a WAV path
    assert stt(clip.to_bytes()) == "a"           # WAV bytes
    assert stt.is_initialized and stt._pipeline.model.config.hidden_size == 16


def test_default_checkpoint_is_smolagents_whisper():
    assert SpeechToTextTool.default_checkpoint == "openai/whisper-large-v3-turbo"
    assert SpeechToTextTool().model == "openai/whisper-large-v3-turbo"  # nothing loads before the first call
