"""Importers: public dataset layouts -> featcache folder layout (by symlink), via a class mapping.

Several importers may write into one ROOT (stills from Stanford40, videos from UCF-101 and
HMDB-51: the SSVAC-40 setting) as long as they share the mapping, which fixes ROOT/classes.txt.
"""

from featcache.data.importers.class_mapping import SOURCES, ClassMapping, shipped_mappings
from featcache.data.importers.hmdb51 import import_hmdb51
from featcache.data.importers.layout_writer import ImportSummary, LayoutWriter
from featcache.data.importers.stanford40 import import_stanford40
from featcache.data.importers.ucf101 import import_ucf101

IMPORTERS = {"ucf101": import_ucf101, "hmdb51": import_hmdb51, "stanford40": import_stanford40}

__all__ = [
    "SOURCES",
    "ClassMapping",
    "IMPORTERS",
    "ImportSummary",
    "LayoutWriter",
    "import_hmdb51",
    "import_stanford40",
    "import_ucf101",
    "shipped_mappings",
]
