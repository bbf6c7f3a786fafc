"""The other operators on structured weights: tie and affine projections, convolutions as tied
layers, Hard Concrete gates, soft weight sharing (docs/design.md#layout)."""
