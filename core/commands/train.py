"""``splatgen train {regressor,var,diffusion,mv-*,teacher-guided,perceptual,camera}``: the command line of :mod:`splatgen.core.training`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import SplatgenError
from ..training.config import TrainConfig


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model (regressor, var, diffusion, the multi-view stages mv-*) on a built dataset",
                       description="Train one of the generator's models. Runs end cleanly after --max-minutes "
                                   "with a resumable checkpoint in OUT/checkpoint; --resume continues exactly. "
                                   "Under torchrun the run uses every GPU (DistributedDataParallel).")
    p.add_argument("model", choices=("regressor", "var", "diffusion", "mv-autoencoder", "mv-denoiser", "mv-decoder",
                                      "mv-distill", "teacher-guided", "one-step", "perceptual", "camera"),
                   help="one-step: the one-step student (seed 002) distilled from a collection of `splatgen distil "
                        "collect` (--data), starting from --init-from REGRESSOR; teacher-guided: a denoiser over the --teacher regressor's noised Splatter Images, trained "
                        "on renders only (seed 000); mv-*: the stages of the multi-view model, in this order: autoencoder, denoiser, decoder, "
                        "distill (the decoder needs only the autoencoder); perceptual: the category classifier of the "
                        "eval's KID; camera: the photo-camera (elevation) estimator, chosen on --test-data's val split")
    p.add_argument("--data", type=Path, required=True,
                   help="a dataset built by `splatgen data build` (its train split is used) or packed by `splatgen data pack`; "
                        "one-step: a collection of `splatgen distil collect`")
    p.add_argument("-o", "--out", type=Path, required=True, help="run folder (checkpoint/, log.jsonl, samples)")
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT/checkpoint if it exists")
    p.add_argument("--init-from", help="start from the weights of a model folder (e.g. assets/models/regressor)")
    p.add_argument("--export", help="write the EMA weights as fp16 to this model folder at the end")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes")
    p.add_argument("--max-steps", type=int, help="stop at this global step")
    p.add_argument("--checkpoint-minutes", type=float, default=TrainConfig.default("checkpoint_minutes"))
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=TrainConfig.default("device"))
    p.add_argument("--seed", type=int, default=TrainConfig.default("seed"))
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network's forward and backward (worth it on CUDA for long runs)")
    p.add_argument("--batch-size", type=int, default=TrainConfig.default("batch_size"))
    p.add_argument("--num-targets", type=int, default=TrainConfig.default("num_targets"), help="novel views rendered per object and step")
    p.add_argument("--num-context", type=int, default=TrainConfig.default("num_context"),
                   help="var / diffusion: target views the VAR encoder also sees (the others test 3D consistency); "
                        "teacher-guided with --noisy-source posterior: the views its posterior is drawn from")
    p.add_argument("--lr", type=float, default=TrainConfig.default("lr"))
    p.add_argument("--warmup", type=int, default=TrainConfig.default("warmup"))
    p.add_argument("--lr-final", type=float, default=TrainConfig.default("lr_final"), metavar="LR",
                   help="after the warm-up, decay the learning rate along a cosine to LR by the end of this run "
                        "(--max-steps or --max-minutes, whichever ends first); default: constant")
    p.add_argument("--grad-clip", type=float, default=TrainConfig.default("grad_clip"))
    p.add_argument("--ema-decay", type=float, default=TrainConfig.default("ema_decay"))
    p.add_argument("--log-every", type=int, default=TrainConfig.default("log_every"))
    p.add_argument("--mirror", type=float, default=TrainConfig.default("mirror"), metavar="PROB",
                   help="probability of mirroring a training object left-right (views flipped, cameras "
                        "reflected; default 0.5, 0 turns it off)")
    p.add_argument("--gaussians-per-pixel", type=int, default=TrainConfig.default("gaussians_per_pixel"))
    p.add_argument("--ssim-weight", type=float, default=TrainConfig.default("ssim_weight"))
    p.add_argument("--alpha-weight", type=float, default=TrainConfig.default("alpha_weight"))
    p.add_argument("--loss-scale", type=int, choices=(1, 2, 3, 4), default=TrainConfig.default("loss_scale"),
                   help="also render the loss at this multiple of the views' size, against the views upsampled: "
                        "gaps between splats that show when zoomed then cost loss (default 1: off)")
    p.add_argument("--zoom-weight", type=float, default=TrainConfig.default("zoom_weight"),
                   help="weight of the zoomed loss of --loss-scale beside the loss at the views' size (default 0.5)")
    p.add_argument("--kl-weight", type=float, default=TrainConfig.default("kl_weight"), help="β of the VAR's KL term")
    p.add_argument("--decoder-only", action="store_true",
                   help="var: train the reconstructor only (encoders frozen), so a denoiser trained on this "
                        "VAR's latents stays valid")
    p.add_argument("--var", help="diffusion: the trained VAR model folder whose latent space to model; teacher-guided "
                                 "with --noisy-source posterior: the VAR whose posterior objects are noised")
    p.add_argument("--teacher", metavar="REGRESSOR_FOLDER",
                   help="diffusion: append this frozen regressor's 16×16 features of the input view to the denoiser's "
                        "condition (e.g. assets/models/regressor; the model set must then ship that very regressor); "
                        "teacher-guided: the frozen regressor whose noised objects the denoiser learns from "
                        "(default: the shipped one)")
    p.add_argument("--teacher-latent", action="store_true",
                   help="diffusion, with --teacher: the condition also carries the teacher's object as a VAR latent "
                        "(its renders from two orbit poses read by the VAR's view encoder beside the input)")
    p.add_argument("--render-items", type=int, default=TrainConfig.default("render_items"), metavar="R",
                   help="diffusion: also decode the predicted clean latent of R items per step with the frozen VAR and "
                        "compare its renders with --num-targets views of the object (2D supervision; default 0: off)")
    p.add_argument("--render-weight", type=float, default=TrainConfig.default("render_weight"),
                   help="diffusion: weight of that render loss against the latent loss (default 1)")
    p.add_argument("--cond-dropout", type=float, default=TrainConfig.default("cond_dropout"), help="diffusion: condition dropout for CFG")
    p.add_argument("--latent-pool", type=int, default=TrainConfig.default("latent_pool"), metavar="ITEMS",
                   help="diffusion: keep this many VAR encodings (input view, context views, mirroring) and draw "
                        "batches from them, a new latent from each posterior every time; 0: encode every batch "
                        "afresh")
    p.add_argument("--denoiser-channels", type=int, nargs="+", default=TrainConfig.default("denoiser_channels"), metavar="C",
                   help="diffusion, a new denoiser: UNet channels per level, multiples of 32 (default 64 128 128; "
                        "--resume and --init-from keep the size of their weights)")
    p.add_argument("--denoiser-layers", type=int, default=TrainConfig.default("denoiser_layers"), metavar="N",
                   help="diffusion, a new denoiser: ResNet layers per UNet level (default 1)")
    p.add_argument("--pool-reuse", type=int, default=TrainConfig.default("pool_reuse"), metavar="R",
                   help="diffusion: each step replaces batch-size / R pool items, so an encoding is drawn R times "
                        "on average (keep it small: a stale pool costs the samples their diversity)")
    p.add_argument("--splat-channels", type=int, nargs="+", default=TrainConfig.default("splat_channels"),
                   metavar="C", help="teacher-guided, a new denoiser: UNet channels per level over the 128² Splatter "
                                     "Image, multiples of 8 (default 32 64 128 128)")
    p.add_argument("--splat-backbone", choices=("unet", "teacher"), default=TrainConfig.default("splat_backbone"),
                   help="teacher-guided, a new denoiser: a new diffusers UNet ('unet'), or the teacher regressor's "
                        "architecture starting from its weights ('teacher': the teacher's quality from the first step)")
    p.add_argument("--chain-prob", type=float, default=TrainConfig.default("chain_prob"), metavar="P",
                   help="teacher-guided: share of steps whose input is the denoiser's own sampling chain (the default "
                        "sampler's steps from noise, without gradients) instead of the noised teacher; the step "
                        "it reaches is trained on the rendered views (multi-step supervision; default 0)")
    p.add_argument("--noisy-source", choices=("teacher", "posterior"), default=TrainConfig.default("noisy_source"),
                   help="teacher-guided: what is noised into the denoiser's input: the teacher's object ('teacher'), "
                        "or the --var VAR's posterior from the input and --num-context target views ('posterior': "
                        "an object that has seen more than the image, so the noisy input carries what the image "
                        "lacks)")
    p.add_argument("--test-data", type=Path, default=None,
                   help="perceptual: the dataset whose test split the accuracy is reported on; camera: the dataset whose "
                        "val split picks the weights (default --data)")
    cam = p.add_argument_group("photo-camera estimator (camera)")
    cam.add_argument("--camera-size", type=int, default=64, metavar="S",
                     help="the estimator's input size, S² (default 64; the prepared 128² input area-downsampled)")
    cam.add_argument("--camera-widths", type=int, nargs="+", default=None, metavar="C",
                     help="its stages' widths, one stride-2 stage each, S / 2^stages ≥ 1 (default 16 32 64 128)")
    cam.add_argument("--camera-views", type=int, default=None, metavar="N",
                     help="views of each train object used (default 12 of the dataset's 24)")
    cam.add_argument("--camera-jitter", type=float, default=0.0, metavar="J",
                     help="augmentation: random scale 1 ± J and shift ± J/2 of the width (default 0)")
    cam.add_argument("--camera-weight-decay", type=float, default=1e-4, metavar="W",
                     help="AdamW's weight decay (default 1e-4)")
    cam.add_argument("--workers", type=int, default=1, help="camera: processes preparing the views (default 1)")
    mv = p.add_argument_group("multi-view model (mv-*)")
    mv.add_argument("--num-views", type=int, default=TrainConfig.default("num_views"),
                    help="orbit views per object generated / decoded together (default 8)")
    mv.add_argument("--autoencoder", metavar="FOLDER", help="mv-denoiser, mv-decoder, mv-distill: the trained autoencoder")
    mv.add_argument("--denoiser", metavar="FOLDER", help="mv-distill: the trained multi-view denoiser to adapt")
    mv.add_argument("--decoder", metavar="FOLDER", help="mv-distill: the trained Gaussian decoder (frozen)")
    mv.add_argument("--lora-rank", type=int, default=TrainConfig.default("lora_rank"),
                    help="mv-distill: rank of the LoRA adapters on the denoiser's attention (default 8)")
    mv.add_argument("--consistency-weight", type=float, default=TrainConfig.default("consistency_weight"),
                    help="mv-distill: weight of the 3D consistency loss against the diffusion loss (default 1)")
    mv.add_argument("--depth-weight", type=float, default=TrainConfig.default("depth_weight"),
                    help="mv-distill: weight of the depth term in the 3D loss (default 0.5)")
    mv.add_argument("--mv-channels", type=int, nargs="+", default=TrainConfig.default("mv_channels"), metavar="C",
                    help="a new multi-view network's block widths, multiples of 8 (default: the network's own)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..training.viewbank import load_view_bank
    from .common import check_output_dir

    check_output_dir(args.out)  # not a file, writable; created only once the data has loaded
    if args.model in ("perceptual", "camera") and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # each rank would train its own copy into the same folder
        raise SplatgenError(f"`train {args.model}` runs in one process: start it without torchrun")
    if args.model == "perceptual":  # a classifier for the eval's KID, not a generator: its own short loop
        from ..training.perceptual import train_perceptual

        batch = args.batch_size if args.batch_size != TrainConfig.default("batch_size") else 128
        train_perceptual(args.data, args.export or args.out, args.test_data, minutes=args.max_minutes or 10.0,
                         batch_size=batch, seed=args.seed)
        return 0
    if args.model == "camera":  # the photo-camera estimator: a small CNN, its own short loop (--device: auto = a GPU if any)
        from ..training.camera import VIEWS_PER_OBJECT, check_camera_options, train_camera

        check_camera_options(args.camera_size, args.camera_widths, args.camera_views, args.camera_jitter, args.workers)
        batch = args.batch_size if args.batch_size != TrainConfig.default("batch_size") else 64
        lr = args.lr if args.lr != TrainConfig.default("lr") else 2e-3
        train_camera(args.data, args.export or args.out, args.test_data, minutes=args.max_minutes or 20.0,
                     batch_size=batch, lr=lr, seed=args.seed, max_steps=args.max_steps, widths=args.camera_widths,
                     input_size=args.camera_size, views_per_object=args.camera_views or VIEWS_PER_OBJECT,
                     device=args.device, workers=args.workers, jitter=args.camera_jitter,
                     weight_decay=args.camera_weight_decay)
        return 0
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.field_names()})

    def bank(device, rank: int = 0, world_size: int = 1):  # rank's shard of the train split
        return load_view_bank(config.data, device, rank=rank, world_size=world_size)

    if config.model.startswith("mv-"):
        from ..training.multiview import run_stage

        result = run_stage(config, bank)
    elif config.model == "one-step":  # --data is a collection of `splatgen distil collect`, not a dataset
        from ..training.one_step import train_one_step

        result = train_one_step(config)
    elif config.model == "teacher-guided":
        from ..training.teacher_guided import train_teacher_guided

        result = train_teacher_guided(config, bank)
    elif config.model in ("regressor", "var"):
        from ..training.recon import train_reconstruction

        result = train_reconstruction(config, bank)
    else:
        from ..training.diffusion import train_diffusion

        result = train_diffusion(config, bank)
    print(f"done: step {result['step']} ({result['steps_this_run']} this run, {result['minutes']:.1f} min, "
          f"{result['step_minutes']:.2f} of them in optimiser steps)")
    return 0
