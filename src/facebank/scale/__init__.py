"""Past one machine: enrollment as a Ray Data job (``ray_enroll``) and face-like synthetic data for
search benchmarks (``synthetic``). Ray is optional: ``pip install 'ray[data]'``."""
