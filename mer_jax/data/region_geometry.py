"""The six regions of Aouayeb et al. (MLSP 2019, sec. 3.1, 4.1.2) as a regions build stores them: their
names, in order (left and right in image terms, as in mer_jax/data/preprocess/faces.py: the image-left eye
is the subject's right eye), sizes and the common canvas. Pure Python: a model reads the sizes without
OpenCV or dlib."""

REGION_NAMES = ("left_eye_brow", "right_eye_brow", "nose", "left_cheek", "right_cheek", "mouth")
# Aouayeb et al., MLSP 2019, sec. 4.1.2 gives {[100,80], [100,80], [120,80], [60,60], [60,60], [160,60]}
# without saying which number is the width. Read by the anatomy, the larger number runs along each
# region's long side: eye + brow and mouth are wider than tall, the nose (bridge to nostrils) is taller
# than wide. As (height, width):
REGION_SIZES = ((80, 100), (80, 100), (120, 80), (60, 60), (60, 60), (60, 160))
# The common canvas every region of a frame is stored on (largest height, largest width), each region
# at its top-left: a model cuts region r back as x[..., r, :h_r, :w_r, :].
CANVAS = (max(h for h, _ in REGION_SIZES), max(w for _, w in REGION_SIZES))
CHANNELS = 1  # grayscale (docs/data.md, regions: SAMM is monochrome)
