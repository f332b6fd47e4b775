"""Typed errors of scorecards and models, each with a stable code."""

from __future__ import annotations

from lendcore.errors import Conflict, InvalidInput, NotFound


class DataFileInvalid(InvalidInput):
    """A training or scoring data file that cannot be used as it is."""

    code = "MODEL_DATA_INVALID"


class DataFileEmpty(DataFileInvalid):
    code = "MODEL_DATA_EMPTY"


class TargetMissing(DataFileInvalid):
    """The target column is absent, or some rows have no target value."""

    code = "MODEL_DATA_TARGET_MISSING"


class TargetInvalid(DataFileInvalid):
    """The target is not binary (0/1, or good/bad), or has only one class."""

    code = "MODEL_DATA_TARGET_INVALID"


class ConstantColumn(DataFileInvalid):
    code = "MODEL_DATA_COLUMN_CONSTANT"


class NonNumericValue(DataFileInvalid):
    code = "MODEL_DATA_NOT_NUMERIC"


class ColumnMissing(DataFileInvalid):
    """A column the model needs (or the id column named) is not in the file."""

    code = "MODEL_DATA_COLUMN_MISSING"


class ModelArtifactInvalid(InvalidInput):
    """A model artifact that does not parse, or whose content hash does not match."""

    code = "MODEL_ARTIFACT_INVALID"


class FeatureInvalid(InvalidInput):
    """A feature value of the wrong type given to a model's score()."""

    code = "MODEL_FEATURE_INVALID"


class ModelNotFound(NotFound):
    code = "MODEL_NOT_FOUND"


class NoActiveModel(NotFound):
    code = "MODEL_NONE_ACTIVE"


class ModelRoleInvalid(InvalidInput):
    code = "MODEL_ROLE_INVALID"


class ModelAlreadyActive(Conflict):
    code = "MODEL_ALREADY_ACTIVE"
