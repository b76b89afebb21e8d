"""Each family's sites and logit effects, on a tiny random-weight model built from its config (no
download), against a reference computed by hand from the model's own modules."""

import pytest
import torch

from latentviz import architectures, backbones
from latentviz.architectures import ArchitectureError

SIZE = {"vocab_size": 96, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3}
HEADS = {"num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 16}


def tiny(family: str):
    """A random (LM, config) of the family, with every norm's weight and bias random too, so a wrong
    norm or a missing (1 + w) changes the numbers."""
    from transformers import CONFIG_MAPPING, AutoModel, AutoModelForCausalLM

    if family == "gpt2":
        config = CONFIG_MAPPING[family](vocab_size=96, n_embd=32, n_layer=3, n_head=2, n_positions=64)
    elif family in ("bert", "gpt_neox"):
        config = CONFIG_MAPPING[family](**SIZE, num_attention_heads=2)
    else:
        config = CONFIG_MAPPING[family](**SIZE, **HEADS)
    torch.manual_seed(0)
    model = (AutoModel if family == "bert" else AutoModelForCausalLM).from_config(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name.lower() or ".ln" in name or "ln_" in name:
                parameter.normal_(0.5, 0.3)
    return model


def mlp_by_hand(family, block, resid_pre, attn):
    """What the block's MLP adds to the residual stream, written out from its modules."""
    mid = resid_pre + attn
    if family == "gpt2":
        return block.mlp(block.ln_2(mid))
    if family == "gpt_neox":  # a parallel block: its MLP reads the block's input
        return block.mlp(block.post_attention_layernorm(resid_pre))
    if family in ("llama", "qwen2", "qwen3", "mistral"):  # post_attention_layernorm is the MLP's input norm
        return block.mlp(block.post_attention_layernorm(mid))
    if family in ("gemma2", "gemma3_text"):
        return block.post_feedforward_layernorm(block.mlp(block.pre_feedforward_layernorm(mid)))
    if family == "olmo2":  # no input norms: the norms sit after each sublayer
        return block.post_feedforward_layernorm(block.mlp(mid))
    raise AssertionError(family)


CAUSAL = ["gpt2", "gpt_neox", "llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3_text", "olmo2"]


@pytest.mark.parametrize("family", CAUSAL)
def test_sites_are_what_each_sublayer_adds_to_the_residual_stream(family):
    lm = tiny(family)
    model = backbones.Backbone(family, lm.base_model, None, causal=True, device=torch.device("cpu"))
    ids = torch.randint(0, 96, (2, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        resid_pre = lm.base_model(input_ids=ids, output_hidden_states=True).hidden_states[1]
        resid_post, attn, mlp = (
            backbones._forward_to_layer(model, ids, None, 2, site) for site in ("resid_post", "attn_out", "mlp_out")
        )
        assert torch.allclose(resid_pre + attn + mlp, resid_post, atol=1e-5)  # TransformerLens's definition
        assert torch.allclose(mlp, mlp_by_hand(family, model.blocks[1], resid_pre, attn), atol=1e-5)


def test_bert_sublayers_are_the_projections_before_each_residual_and_layernorm():
    bert = tiny("bert")
    model = backbones.Backbone("bert", bert, None, causal=False, device=torch.device("cpu"))
    ids = torch.randint(0, 96, (2, 7), generator=torch.Generator().manual_seed(1))
    block = bert.encoder.layer[1]
    with torch.no_grad():
        resid_pre = bert(input_ids=ids, output_hidden_states=True).hidden_states[1]
        resid_post, attn, mlp = (
            backbones._forward_to_layer(model, ids, None, 2, site) for site in ("resid_post", "attn_out", "mlp_out")
        )
        mid = block.attention.output.LayerNorm(resid_pre + attn)
        assert torch.allclose(mlp, block.output.dense(block.intermediate(mid)), atol=1e-5)
        assert torch.allclose(resid_post, block.output.LayerNorm(mid + mlp), atol=1e-5)


@pytest.mark.parametrize("family", CAUSAL)
def test_logit_effects_are_the_models_own_final_norm_and_unembedding(family):
    lm = tiny(family)
    norm = architectures._get(lm.base_model, architectures.FAMILIES[family].final_norm)
    directions = torch.randn(5, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = architectures.logit_effects(lm, directions)
        # the model's own norm divides by the token's scale (a positive scalar) and may add a bias:
        # undo both, and what is left is the direction's effect through the norm's gain and the unembedding
        unembed = lm.get_output_embeddings()
        if isinstance(norm, torch.nn.LayerNorm):
            scale = (directions.var(-1, unbiased=False, keepdim=True) + norm.eps).sqrt()
            reference = (unembed(norm(directions)) - unembed(norm.bias.expand(5, -1))) * scale
        else:
            eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
            reference = unembed(norm(directions)) * (directions.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    assert torch.allclose(ours, reference, rtol=1e-4, atol=1e-4)


def test_an_unknown_family_reads_resid_post_and_is_refused_the_rest_in_one_line():
    lm = tiny("llama")
    lm.config.model_type = "mystery"
    assert architectures.site_module(lm, 2, "resid_post") is lm.model.layers[1]  # found by name
    with pytest.raises(ArchitectureError, match="does not know where mystery models keep their mlp_out"):
        architectures.site_module(lm, 2, "mlp_out")
    with pytest.raises(ArchitectureError, match="their final norm"):
        architectures.logit_effects(lm, torch.ones(1, 32))
