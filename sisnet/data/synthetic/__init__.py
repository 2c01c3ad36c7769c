"""The embedded default dataset: a procedurally drawn, multi-scale person ReID set in Market-1501 layout.

Why it exists
-------------
Real ReID datasets (Market-1501, DukeMTMC-reID, MSMT17) cannot be downloaded here and a fresh user may not
have them, so the project ships this generator. It writes a folder that the ordinary Market-1501 loader reads
(``sisnet.data.load_dataset("synthetic", root)``) and that is built to exercise the problem the SiSNet paper
is about: the *same* person captured at very different resolutions.

What it is
----------
* People are drawn with PIL primitives (head, hair, torso, arms, legs, shoes; optional bag, hat, logo,
  wristband). Colours come from small, skewed palettes (many black/grey/navy tops, jeans...) so that many
  identities share a coarse look and are told apart only by the *combination* of cues, several of which are
  small (a logo on the chest, the shoe colour, a wristband) and blur away at low resolution.
* Several cameras (default 6), each with its own illumination gain, colour cast, sensor noise, viewpoint mix (front / back / side change what is visible: the logo is only on the front,
  a backpack is a big patch seen from the back but only two straps from the front) and its own person-height
  distribution (near and far cameras). Each image gets its own walking phase and detection misalignment,
  and its own background scene, drawn from a shared pool of procedural scenes independently of identity and
  camera (generator version 3; see ``cameras._background_pool`` for why).
* Scale: every capture is rendered at a native person height drawn per image (log-uniform inside the
  camera's range, overall ~24..256 px) on a background crop of the matching native size, then the crop is
  resized to the stored 128 x 64 (H x W) and saved as JPEG (quality 90). Small captures are therefore
  blurry/blocky after up-sampling, as in real data (paper Fig. 1). The native height of every image is in
  the sidecar ``scales.csv`` (columns ``split,name,height_px`` plus ``crop_height_px,view,kind``).
* Exact Market-1501 layout and naming: ``bounding_box_train/``, ``query/``, ``bounding_box_test/``, names
  ``PPPP_cCsS_FFFFFF_NN.jpg`` (camera 1-based). Train and test identities are disjoint. The query holds one
  image per test identity and camera; the gallery holds the other images of the test identities, plus
  distractors (``0000_...``: people who never appear in the query) and junk (``-1_...``: bad crops showing
  part of a body or mostly background). Every query has a gallery match in another camera.
* Version 4 adds a controlled scale regime (size ``scale``, used by ``python -m sisnet.experiments scale``):
  identities in coarse groups that share every coarse attribute and differ only by a 4 x 3 chest code of light and
  dark cells (half light, so every code has the same mean colour and a capture too small to resolve it shows the
  same grey patch), and far cameras (people 20-40 px tall) beside near ones (96-256 px), every identity seen by at
  least one of each. The classic settings draw exactly version 3's bytes and record version 3.
* Deterministic: the same seed and config give the same bytes. Each image has its own RNG derived from
  ``(seed, identity, camera, index)``, so generation can be split over processes without changing a byte.

What it is not
--------------
It is not a substitute for real data: the people are cartoons, poses are a walking cycle, there is no real
occlusion, clutter, motion blur or pose variety, and absolute accuracies on it say nothing about
Market-1501. It exercises the *pipeline* (loaders, protocol corner cases, training, evaluation split by
scale) and gives the scale problem a controlled, reproducible form, so that relative effects (e.g. a method
that helps on small captures) can be seen quickly on a CPU.

Also here: :func:`render_mot_sequence`, a MOTChallenge-format sequence (people walking towards and away from
the camera so their height changes a lot) used to test ``sisnet.data.mot``.

Where things are
----------------
* ``people``: the clothing palettes, :class:`Identity`, :func:`make_identity`, :func:`render_person`.
* ``cameras``: the camera model (:func:`camera_model`), procedural backgrounds, :func:`render_capture`.
* ``settings``: :class:`SyntheticConfig`, the named sizes :data:`SIZES`, :func:`make_config`.
* ``writer``: the image plan, :func:`generate` (images, ``meta.json``, ``scales.csv``), :func:`summarize`,
  :func:`write_sample_grid` and the CLI :func:`main`.
* ``footage``: :func:`render_mot_sequence`.
* ``streams``: the RNG stream ids and identity-key ranges every module draws from.

Every public name is importable from ``sisnet.data.synthetic`` itself. To monkeypatch a helper, patch it in
the module that calls it (e.g. ``sisnet.data.synthetic.writer._render_chunk``), not here.

CLI::

    python -m sisnet.data.synthetic --out data/synthetic [--size default] [--seed 0] [--workers 2]

prints the summary table and writes the sample grid ``results/synthetic/samples.png``.
"""
from __future__ import annotations

from .cameras import camera_model, render_capture
from .footage import render_mot_sequence
from .people import (ACCENTS, BAGS, BOTTOMS, HAIRS, RGB, SHOES, SKINS, TOPS, VIEWS, Identity, make_identity,
                     render_person)
from .settings import SIZES, SyntheticConfig, make_config
from .writer import (GENERATOR_VERSION, MARKET_NAME_RE, META_FILE, SCALE_SIDECAR, SPLITS, generate, main, summarize,
                     write_sample_grid)

__all__ = [
    "SyntheticConfig",
    "SIZES",
    "VIEWS",
    "GENERATOR_VERSION",
    "Identity",
    "make_identity",
    "render_person",
    "render_capture",
    "camera_model",
    "generate",
    "summarize",
    "write_sample_grid",
    "render_mot_sequence",
    "main",
]

