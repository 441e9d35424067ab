"""Training data: synthetic manifolds (line, circle, sphere, mixtures), scikit-learn digits, image folders, arrays."""

from .dataset import Dataset, datasets
from .digits import load_digits
from .folder import load_image_folder
from .loading import load_array_file, load_dataset
from .synthetic import circle_points, gaussian_mixture, line_points, sphere_points

__all__ = [
    "Dataset",
    "datasets",
    "load_dataset",
    "load_array_file",
    "load_digits",
    "load_image_folder",
    "line_points",
    "circle_points",
    "sphere_points",
    "gaussian_mixture",
]
