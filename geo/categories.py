"""List the "8+N" volunteer service categories (8 national, N local extras)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from geo._errors import UnknownCategoryError


class CategoryCode(StrEnum):
    """Codes of the "8+N" categories: the 8 national ones, then the local extras."""

    THEORY = "theory"
    CULTURE = "culture"
    TUTORING = "tutoring"
    HEALTH = "health"
    SCIENCE = "science"
    LEGAL = "legal"
    ENVIRONMENT = "environment"
    ASSISTANCE = "assistance"
    ELDERLY = "elderly"
    NEIGHBOURHOOD = "neighbourhood"


@dataclass(frozen=True)
class Category:
    """One volunteer service category."""

    code: CategoryCode
    name: str
    name_en: str
    core: bool


CATEGORIES: tuple[Category, ...] = (
    Category(CategoryCode.THEORY, "理论政策宣讲", "theory & policy talks", True),
    Category(CategoryCode.CULTURE, "文化文艺服务", "culture & arts", True),
    Category(CategoryCode.TUTORING, "助学支教", "tutoring", True),
    Category(CategoryCode.HEALTH, "医疗健身", "medical care & fitness", True),
    Category(CategoryCode.SCIENCE, "科学普及", "science popularization", True),
    Category(CategoryCode.LEGAL, "法律服务", "legal aid", True),
    Category(CategoryCode.ENVIRONMENT, "卫生环保", "hygiene & environment", True),
    Category(CategoryCode.ASSISTANCE, "扶残济困", "help for the disabled and poor", True),
    Category(CategoryCode.ELDERLY, "敬老助老", "elderly care (local extra)", False),
    Category(CategoryCode.NEIGHBOURHOOD, "邻里守望", "neighbourhood mutual aid (local extra)",
             False),
)
CATEGORY_CODES: tuple[CategoryCode, ...] = tuple(c.code for c in CATEGORIES)
CORE_CODES: tuple[CategoryCode, ...] = tuple(c.code for c in CATEGORIES if c.core)


def category(code: str) -> Category:
    """Return the category with this code.

    Raises
    ------
    UnknownCategoryError
        If the code is not one of :data:`CATEGORY_CODES`; the message lists the valid ones.
    """
    for c in CATEGORIES:
        if c.code == code:
            return c
    msg = f"未知的服务类别 {code!r}；可选：{', '.join(CATEGORY_CODES)}"
    raise UnknownCategoryError(msg)
