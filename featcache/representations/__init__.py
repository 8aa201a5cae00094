"""Temporal representations of a video: dynamic images and optical-flow stacks.

Both take decoded RGB frames ``[T, H, W, 3]`` uint8 and return uint8 arrays ready to store
in ``temporal.h5``; both use the middle of the video, as in the paper (Sec. 4.1).
"""

from featcache.representations.dynamic_image import dynamic_images, rank_pool_weights
from featcache.representations.optical_flow import FLOW_METHODS, create_flow_method, flow_stacks

__all__ = ["dynamic_images", "rank_pool_weights", "flow_stacks", "create_flow_method", "FLOW_METHODS"]
