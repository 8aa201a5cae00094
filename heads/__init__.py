"""Stage 2 of featcache: heads trained on cached features (classifiers, GAN, triplet
embedding), evaluation and fusion, grids, the teacher-student network, and reports.

Data flows one way: heads read feature caches written by :mod:`featcache`; nothing in
:mod:`featcache` imports from here.
"""
