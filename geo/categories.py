"""List the "8+N" volunteer service categories (8 national, N local extras)."""

from __future__ import annotations

from dataclasses import dataclass

from geo._errors import UnknownCategoryError


@dataclass(frozen=True)
class Category:
    """One volunteer service category."""

    code: str
    name: str
    name_en: str
    core: bool


CATEGORIES: tuple[Category, ...] = (
    Category("theory", "理论政策宣讲", "theory & policy talks", True),
    Category("culture", "文化文艺服务", "culture & arts", True),
    Category("tutoring", "助学支教", "tutoring", True),
    Category("health", "医疗健身", "medical care & fitness", True),
    Category("science", "科学普及", "science popularization", True),
    Category("legal", "法律服务", "legal aid", True),
    Category("environment", "卫生环保", "hygiene & environment", True),
    Category("assistance", "扶残济困", "help for the disabled and poor", True),
    Category("elderly", "敬老助老", "elderly care (local extra)", False),
    Category("neighbourhood", "邻里守望", "neighbourhood mutual aid (local extra)", False),
)
CATEGORY_CODES: tuple[str, ...] = tuple(c.code for c in CATEGORIES)
CORE_CODES: tuple[str, ...] = tuple(c.code for c in CATEGORIES if c.core)


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
