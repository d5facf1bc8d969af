"Everything a notebook needs, in one import: `from fastai_ae.all import *` (hand-written, like `fastai.vision.all`); the benchmark is `fastai_ae.bench`"
from fastai.vision.all import *
from .data import *
from .loaders import *
from .layers import *
from .models import *
from .losses import *
from .callbacks import *
from .learner import *
from .vis import *
from .transfer import *
from .ssvae import *
from .latent import *
from .ladder import *
from .augment import *
from .fixmatch import *
from .pretext import *
from .distributed import *
