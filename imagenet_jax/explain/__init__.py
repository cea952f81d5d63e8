"""Seeing inside a trained classifier: attribution maps, model pictures and the numbers that check them.

network.py   a model + variables + normalization as pure functions of pixel images, any layer readable
methods.py   attribution methods (a registry): gradients, SmoothGrad, Integrated Gradients, Grad-CAM(++),
             occlusion, LIME; each maps (network, images, targets, options) to [N, H, W]
pictures.py  first-layer filters, feature maps, class-model visualization
embedding.py penultimate features, t-SNE/UMAP projections, nearest-neighbour retrieval
checks.py    deletion/insertion curves and the model-randomization sanity check
run.py       the `explain` command's work: a run's checkpoint -> DIR/explain/<step>/ (PNGs and explain.json)
"""
