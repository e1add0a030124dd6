from .configuration_learngene import LearngeneConfig, RoleRecord

__all__ = ["LearngeneConfig", "RoleRecord"]
