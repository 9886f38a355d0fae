"""The generation controls: model, guidance, skip-connection weight, steps, scheduler, strength (start
from the teacher regressor's object), seed (with a randomise button), number of samples; Generate /
Cancel and the per-step progress bar.

Values start at the chosen model's defaults (``Generator.defaults``, from its config) overlaid with
what the user used last time for that model (:meth:`apply_model_info`); :meth:`settings` reads them
back as a :class:`~splatgen.core.generator.GenerationSettings`. Fields a model ignores (all of them
for the deterministic regressor) are disabled. Signals: ``generate_requested()``,
``cancel_requested()``, ``model_changed(str key)``.
"""

from __future__ import annotations

import random

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                             QProgressBar, QPushButton, QSizePolicy, QSpinBox, QToolButton, QVBoxLayout)

from splatgen.core.generator import GenerationSettings

from .plain_text import plain_tooltip

SEED_MAX = 2**31 - 1
#: Samples per run until the user picks a number (several: diversity is the point of the model).
DEFAULT_SAMPLES = 4


class GenerationControls(QGroupBox):
    generate_requested = pyqtSignal()
    cancel_requested = pyqtSignal()
    model_changed = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__("Generate", parent)
        self.setObjectName("controls")
        self.info = None          # ModelInfo of the selected model, once loaded
        self.left_values = None   # (model key, values) of the model just switched away from
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.model = QComboBox(objectName="model")
        self.model.setToolTip("The generator: latent diffusion (many different samples) or the deterministic "
                              "Splatter-Image regressor (one)")
        self.model.currentIndexChanged.connect(self._model_changed)
        form.addRow("Model", self.model)

        self.guidance = QDoubleSpinBox(objectName="guidance", decimals=2, minimum=0.0, maximum=20.0, singleStep=0.25)
        self.guidance.setToolTip("Classifier-free guidance weight w: 1 = none; higher follows the image more "
                                 "closely and gives less varied samples")
        form.addRow("Guidance", self.guidance)

        self.skip_weight = QDoubleSpinBox(objectName="skip_weight", decimals=2, minimum=0.0, maximum=2.0,
                                          singleStep=0.05)
        self.skip_weight.setToolTip("Weight of the input image's skip-connection features in the decoder "
                                    "(1 = as trained; lower lets the latent decide more)")
        form.addRow("Skip weight", self.skip_weight)

        self.steps = QSpinBox(objectName="steps", minimum=1, maximum=1000)
        self.steps.setToolTip("Denoising steps (more: slower, finer)")
        form.addRow("Steps", self.steps)

        self.scheduler = QComboBox(objectName="scheduler")
        self.scheduler.setToolTip("Sampler: DDIM, or DPM-Solver (good with fewer steps)")
        form.addRow("Scheduler", self.scheduler)

        self.strength = QDoubleSpinBox(objectName="strength", decimals=2, minimum=0.05, maximum=1.0, singleStep=0.05)
        self.strength.setToolTip("Share of the denoising schedule to run: 1 = from pure noise (the most varied "
                                 "samples); lower starts from the regressor's object and varies less around it")
        form.addRow("Strength", self.strength)

        self.seed = QSpinBox(objectName="seed", minimum=0, maximum=SEED_MAX)
        self.seed.setToolTip("Sample i uses seed + i; the same seed and settings give the same samples")
        self.randomise = QToolButton(objectName="randomise", text="Random")
        self.randomise.setToolTip("Randomise the seed")
        self.randomise.clicked.connect(self.randomise_seed)
        seed_row = QHBoxLayout()
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.randomise)
        form.addRow("Seed", seed_row)

        self.num_samples = QSpinBox(objectName="num_samples", minimum=1, maximum=64)
        self.num_samples.setToolTip("How many different samples to generate")
        form.addRow("Samples", self.num_samples)

        self.colour_match = QCheckBox("Match the photo's colours", objectName="colourMatch", checked=True)
        self.colour_match.setToolTip("Correct each sample's colours by one colour transform fitted on its view "
                                     "from the photo's camera (the hidden side gets the same correction)")
        form.addRow("", self.colour_match)

        self.defaults = QPushButton("Model defaults", objectName="defaults")
        self.defaults.setToolTip("Reset guidance, skip weight, steps, scheduler and strength to the model's defaults")
        self.defaults.clicked.connect(self.reset_to_defaults)

        self.generate = QPushButton("Generate", objectName="generate")
        self.generate.setDefault(True)
        self.generate.setToolTip("Generate samples of the prepared input (Ctrl+Return)")
        self.generate.clicked.connect(self.generate_requested)
        self.cancel = QPushButton("Cancel", objectName="cancel")
        self.cancel.setToolTip("Stop after the current denoising step; finished samples are kept (Esc)")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.cancel_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate, 2)
        buttons.addWidget(self.cancel, 1)

        self.progress = QProgressBar(objectName="progress", minimum=0, maximum=1, value=0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel("", objectName="generateStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)   # messages may quote file names
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addWidget(self.defaults, 0, Qt.AlignmentFlag.AlignRight)
        box.addLayout(buttons)
        box.addWidget(self.progress)
        box.addWidget(self.status)
        self._param_widgets = (self.guidance, self.skip_weight, self.steps, self.scheduler, self.strength, self.seed,
                               self.randomise, self.num_samples, self.defaults)
        self.set_model_info(None)

    # ------------------------------------------------------------------ models
    def set_models(self, keys: list[str], current: str | None = None) -> None:
        self.model.blockSignals(True)
        self.model.clear()
        for k in keys:
            self.model.addItem(k, k)
        if current in keys:
            self.model.setCurrentIndex(keys.index(current))
        self.model.blockSignals(False)

    def model_key(self) -> str | None:
        return self.model.currentData()

    def _model_changed(self, _index: int) -> None:
        if self.info is not None:    # what the user set for the previous model, to remember it
            self.left_values = (self.info.key, self.values())
        self.set_model_info(None)
        if self.model_key():
            self.model_changed.emit(self.model_key())

    def set_model_info(self, info, remembered: dict | None = None) -> None:
        """The selected model's :class:`~splatgen.app.tasks.ModelInfo` (None: still loading); fills
        in its defaults overlaid with ``remembered`` values."""
        self.info = info
        if info is None:
            for w in self._param_widgets:
                w.setEnabled(False)
            self.generate.setEnabled(False)
            self.status.setText("Loading the model…" if self.model.count() else "No model installed")
            return
        d = info.defaults
        values = {**d.as_dict(), "num_samples": DEFAULT_SAMPLES, **(remembered or {})}
        schedulers = self._schedulers(info)
        self.scheduler.clear()
        self.scheduler.addItems(schedulers)
        self.guidance.setValue(float(values["guidance"]))
        self.skip_weight.setValue(float(values["skip_weight"]))
        self.steps.setValue(int(values["steps"]))
        sched = values["scheduler"] if values["scheduler"] in schedulers else d.scheduler
        self.scheduler.setCurrentText(str(sched))
        teacher = bool(getattr(info, "teacher", False))
        self.strength.setValue(float(values.get("strength") or 1.0) if teacher else 1.0)
        self.seed.setValue(int(values.get("seed", 0)) % (SEED_MAX + 1))
        self.num_samples.setValue(int(values.get("num_samples", 1)) if info.stochastic else 1)
        self.colour_match.setChecked(bool(values.get("colour_match", True)))
        for w in self._param_widgets:
            w.setEnabled(info.stochastic)
        self.strength.setEnabled(info.stochastic and teacher)  # below 1 needs a teacher to start from
        self.model.setToolTip(f"{info.label} ({info.kind}, on {info.device})")
        self.status.setText("" if info.stochastic else f"{info.label}: one sample, no settings to choose")
        self.generate.setEnabled(True)

    @staticmethod
    def _schedulers(info) -> list[str]:
        if not info.stochastic:
            return [str(info.defaults.scheduler)]
        from splatgen.core.models.denoiser import SCHEDULERS

        return list(SCHEDULERS)

    def reset_to_defaults(self) -> None:
        if self.info is not None:
            seed, n = self.seed.value(), self.num_samples.value()
            self.set_model_info(self.info)
            self.seed.setValue(seed)
            self.num_samples.setValue(n)

    # ------------------------------------------------------------------ values
    def randomise_seed(self) -> int:
        value = random.SystemRandom().randrange(0, SEED_MAX)
        self.seed.setValue(value)
        return value

    def settings(self) -> GenerationSettings:
        return GenerationSettings(guidance=self.guidance.value(), skip_weight=self.skip_weight.value(),
                                  steps=self.steps.value(), scheduler=self.scheduler.currentText(),
                                  seed=self.seed.value(), num_samples=self.num_samples.value(),
                                  strength=self.strength.value(), colour_match=self.colour_match.isChecked())

    def values(self) -> dict:
        return self.settings().as_dict()

    # ------------------------------------------------------------------ progress
    def set_busy(self, busy: bool, *, cancellable: bool = True) -> None:
        self.generate.setEnabled(not busy and self.info is not None)
        self.cancel.setEnabled(busy and cancellable)
        if not busy:
            self.progress.setMaximum(1)
            self.progress.setValue(0)
            self.progress.setFormat("")

    def set_message(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(plain_tooltip(text))

    def set_progress(self, done: int, total: int, text: str = "") -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(text or ("%p%" if total > 1 else "working…"))
        if text:
            self.status.setText(text)
            self.status.setToolTip(plain_tooltip(text))
