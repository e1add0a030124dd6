from .configuration_learngene import LearngeneConfig

__all__ = ["LearngeneConfig"]
