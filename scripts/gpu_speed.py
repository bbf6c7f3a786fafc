"""GPU speed table: ``python scripts/gpu_speed.py`` = ``wsrbench compare --gpu-speed``.

The code lives in ``wsrbench.bench.gpu_speed`` so that the CLI reaches it; see its docstring.
"""
from wsrbench.bench.gpu_speed import main

if __name__ == "__main__":
    main()
