"""The data layer: class identities (``classes``), cached CLIP image features (``features``), the features of one class
split as the run hands them on (``split_features``), and this project's dataset readers wherever they are installed
(``readers``: the top-level ``datasets`` package, or ``ship_datasets`` in a CoOp checkout)."""
