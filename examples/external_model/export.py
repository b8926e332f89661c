"""Export a quick-demo model as a plain state dict of factory.py's GlyphCNN, as a model
trained elsewhere would arrive: weights only, no robdml format. The trained model's trunk
layers become `features`, its head `embedding`; the check at the end compares the two models'
embeddings on random images.

    python examples/external_model/export.py results/models/glyphs/cnn/vanilla/seed0/model.pt \
        results/external/glyph_cnn.pt
"""

import argparse
import importlib.util
from pathlib import Path

import torch

from robdml.models import load_model

FACTORY = Path(__file__).with_name("factory.py")


def glyph_cnn_state(trained: torch.nn.Module) -> dict:
    """The trained EmbeddingModel's weights under GlyphCNN's names (its pooling layer, the
    trunk's last, has none; normalisation buffers stay behind: robdml applies the entry's)."""
    state = {}
    for key, value in trained.state_dict().items():
        if key.startswith("trunk."):
            state["features." + key.removeprefix("trunk.")] = value
        elif key.startswith("head."):
            state["embedding." + key.removeprefix("head.")] = value
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a trained quick-demo model file (cnn backbone)")
    parser.add_argument("out", type=Path, help="the state dict to write")
    args = parser.parse_args()
    trained, spec = load_model(args.model)
    spec_module = importlib.util.spec_from_file_location("factory", FACTORY)
    factory = importlib.util.module_from_spec(spec_module)
    spec_module.loader.exec_module(factory)
    exported = factory.build().eval()
    exported.load_state_dict(glyph_cnn_state(trained))  # strict: every weight accounted for
    images = torch.rand(8, 1, 16, 16)
    mean, std = trained.mean, trained.std
    expected = trained(images)
    got = torch.nn.functional.normalize(exported((images - mean) / std), dim=1)
    assert torch.equal(got, expected), "the exported model embeds differently"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(exported.state_dict(), args.out)
    print(f"{args.out}: {spec['defense']['method']} model's weights, embeddings identical")


if __name__ == "__main__":
    main()
