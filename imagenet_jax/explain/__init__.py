"""Seeing inside a trained classifier: attribution maps, model pictures and the numbers that check them.

network.py   a model + variables + normalization as pure functions of pixel images, any layer readable
methods.py   attribution methods (a registry): gradients, SmoothGrad, Integrated Gradients, Grad-CAM(++);
             each maps (network, images, targets, options) to [N, H, W]; `attribute` batches and shards them
occlusion_lime.py  the two perturbation methods, occlusion and LIME (registered in methods.py)
pictures.py  first-layer filters, feature maps, class-model visualization
embedding.py penultimate features, t-SNE/UMAP projections, nearest-neighbour retrieval
checks.py    deletion/insertion curves and the model-randomization sanity check
figures.py   maps over images, the images x methods grid, the curves
job.py       the `explain` command's work: a checkpoint's explanations -> DIR/explain/<step>/ (PNGs, explain.json)
"""
