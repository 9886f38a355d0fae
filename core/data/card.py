"""The dataset card (``README.md`` of a built dataset): provenance, method, counts, licences, credits.

Written by :func:`splatgen.core.data.index.write_index` from ``dataset.json``'s content and the
objects' ``meta.json``; nothing here reads files.
"""

from __future__ import annotations

import collections

from .split import RENDER_RMS, SPLIT_FRACTIONS, SPLITS, split_of


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


#: What each reader does to a model, for the card's "How it was made" (only readers in the dataset appear).
_READER_NOTES = {
    "mesh": "OBJ/MTL (from `.sh3f` zips or folders), GLB/GLTF, PLY, STL, OFF through trimesh; texture paths that "
            "are absolute or in the wrong case are looked up by file name; a SweetHome3D catalog's `modelRotation` "
            "and width × height × depth are applied (as SweetHome3D does).",
    "0ad": "0 A.D. actors read in place from `public.zip`: each group's most frequent variant, PMD meshes with "
           "props at their prop points, DDS textures; `player_*` / object-colour materials tinted by their alpha "
           "mask (one of the game's player colours an object) and drawn opaque, `basic_trans*` alpha as a cut-out; "
           "the game's left-handed frame mirrored (z negated). Foundations, destruction, decals, particles, "
           "temp/test actors and pieces used only at another actor's root are not objects.",
    "megaglest": "MegaGlest G3D v4, frame 0 of each unit's `stop` skill, tileset objects and resources; team-colour "
                 "meshes drawn opaque as mix(team colour, texture, alpha); byte-identical copies listed once.",
    "supertuxkart": "SuperTuxKart SPM: library scenes (the most detailed LOD member, no physics-only shapes), karts "
                    "with wheels, items; the game's left-handed frame mirrored; `materials.xml` decides cut-outs.",
    "flightgear": "FlightGear AC3D (own parser): nested objects, polygon fans, material colours (models without "
                  "textures keep them); sky, weather, effect, light and helper models are not objects.",
}


def _weights_licence_note(licences: list[str]) -> str:
    """What licence weights trained on a dataset with these object licences can carry (README, "Data sources and licences")."""
    from .sources import licence_allowed

    outside = [k for k in licences if not licence_allowed(k, ["gpl3"])]
    if all(licence_allowed(k, ["permissive"]) for k in licences):
        return ("Weights trained on this dataset: every object is CC0, public domain or CC BY, so they need "
                "only credit to the creators below.")
    text = ("Weights trained on this dataset are treated as an adaptation of it and licensed "
            "GPL-3.0-or-later: CC BY-SA 3.0 → 4.0 (its later-version clause) → GPLv3 (Creative Commons' "
            "declared BY-SA 4.0 compatibility); GPL-2+ → GPLv3; CC0, public domain and CC BY need only credit.")
    if outside:
        text += (" Not compatible with that and to be left out of shipped weights (build with `--licence gpl3`): "
                 + ", ".join(f"`{k}`" for k in outside) + ".")
    return text


def dataset_card(index: dict, objects: dict[str, dict]) -> str:
    """The dataset card (Markdown): provenance, method, counts, licences, credits, groups, skipped objects."""
    splits = index["splits"]
    split = {oid: o["split"] for oid, o in index["objects"].items()}
    n = sum(len(v) for v in splits.values())
    cats = collections.defaultdict(collections.Counter)
    lic = collections.defaultdict(collections.Counter)
    per_source = collections.defaultdict(collections.Counter)
    lic_url, lic_text = {}, {}
    creators = collections.defaultdict(collections.Counter)
    for oid, m in objects.items():
        s = split.get(oid, split_of(oid))
        cats[m.get("category", "?")][s] += 1
        lic[m.get("license", "unknown")][s] += 1
        per_source[m.get("source") or m.get("library", "?")][s] += 1
        lic_url.setdefault(m.get("license", "unknown"), m.get("license_url", ""))
        lic_text.setdefault((m.get("library"), m.get("license")), m.get("license_text", ""))
        creators[(m.get("library", "?"), m.get("license", "unknown"))][m.get("creator", "unknown")] += 1
    n_warn = sum(1 for m in objects.values() if m.get("warnings"))
    n_tex = sum(1 for m in objects.values() if m.get("textured"))
    groups = index.get("groups") or {}
    mg = index.get("merged") or {}
    sat = index.get("saturation") or {}
    n_grouped = sum(len(v) for v in groups.values())
    readers = sorted({m.get("reader", "mesh") for m in objects.values()})
    lit = next((m.get("lighting") for m in objects.values() if m.get("lighting")), None) or {}
    n_surface = next((m.get("surface_points") for m in objects.values() if m.get("surface_points")), 0)
    fr = index["framing"]
    lo, hi = fr["elevation_range_deg"]
    out = [
        "# splatgen multi-view dataset",
        "",
        f"{n} objects, each rendered to {index['views']} RGBA views of {index['size']}×{index['size']} pixels "
        f"at splatgen's canonical framing. Built by `splatgen data build` "
        f"({index['build']['date']}) from:",
        "",
        *[f"- `{s}`" for s in index["build"]["sources"]],
        "",
        "## Sources",
        "",
        _table(["source", *SPLITS, "total"],
               [[k, *[cnt[s] for s in SPLITS], sum(cnt.values())] for k, cnt in sorted(per_source.items())]),
        "",
        "## Splits",
        "",
        _table(["split", "objects", "views"], [[k, len(v), len(v) * index["views"]] for k, v in splits.items()]),
        "",
        "Objects are assigned by group. A group joins objects whose normalised geometry is identical (one "
        "mesh under several textures, one unit in several factions) and objects whose renders are "
        f"near-identical (RMS difference below {mg.get('render_rms', RENDER_RMS):g}, over the pixels either "
        "covers, of four flat-lit 32² views from fixed cameras, `signature.png`), transitively. Whole groups go to one split, so no test object "
        "has a twin in train, and each category's objects are shared out "
        + " / ".join(f"{k} {int(f * 100)} %" for k, f in SPLIT_FRACTIONS)
        + " within rounding (groups in the order of SHA-256 of `splatgen-split:<first id>`; ties go where "
          "that hash alone sends the group). "
          f"{len(groups)} groups hold {n_grouped} objects; the other {n - n_grouped} objects are unique. "
          f"Merged: {mg.get('geometry_merged', '?')} objects joined a twin of the same geometry and "
          f"{mg.get('render_merged', '?')} more joined one by their renders ({mg.get('render_pairs', '?')} "
          f"near-identical pairs; {mg.get('with_signature', '?')} of {n} objects have signature views). "
          "Ids and groups are listed in `dataset.json`.",
        "",
        "## Categories",
        "",
        "From each source's own folders or definitions (see each `meta.json`: `category`, `subcategory`).",
        "",
        _table(["category", *SPLITS, "total"],
               [[c, *[cnt[s] for s in SPLITS], sum(cnt.values())] for c, cnt in sorted(cats.items())]),
        "",
        "## Licences",
        "",
        "Each object keeps the licence of the package or library it came from; `meta.json` in its folder "
        "names its creator, licence, source package, category, source file and the licence files. CC-BY and "
        "CC-BY-SA objects require attribution to their creators (below) when redistributed, and so do renders "
        "of them such as this dataset; CC-BY-SA and GPL renders are shared under the same terms."
        + (f" Built with `--licence {','.join(index['build']['licences'])}`." if index["build"].get("licences") else ""),
        "",
        _table(["licence", *SPLITS, "total", "url"],
               [[k, *[cnt[s] for s in SPLITS], sum(cnt.values()), lic_url.get(k, "")] for k, cnt in sorted(lic.items())]),
        "",
        _weights_licence_note(sorted(lic)),
        "",
        "### Credits",
        "",
    ]
    for (library, licence), cnt in sorted(creators.items()):
        text = lic_text.get((library, licence), "")
        top = sorted(cnt.items(), key=lambda x: (-x[1], x[0]))
        names = ", ".join(f"{c} ({k})" if k > 1 else c for c, k in top[:40])
        more = f", and {len(top) - 40} more (see meta.json)" if len(top) > 40 else ""
        out.append(f"- **{library}** — {licence}{' — ' + text if text else ''}: {names}{more}")
    b = index["build"]
    debian = any(src.startswith("/usr/share/sweethome3d") for src in b["sources"])
    if lit.get("mode") == "varied":
        from . import lighting as L

        light_line = (
            "Lambertian shading, two-sided, no specular; each object has its own lights, fixed in the world "
            "across its views (a view-independent splat colour can match them): a key light at azimuth "
            f"uniform in [0°, 360°), elevation uniform in [{L.KEY_ELEVATION_DEG[0]:g}°, {L.KEY_ELEVATION_DEG[1]:g}°], "
            f"black-body colour of {L.KELVIN_RANGE[0]:g}–{L.KELVIN_RANGE[1]:g} K at intensity "
            f"{L.KEY_RANGE[0]:g}–{L.KEY_RANGE[1]:g}; a neutral fill opposite it (± 40°, elevation "
            f"{L.FILL_ELEVATION_DEG[0]:g}–{L.FILL_ELEVATION_DEG[1]:g}°) at {L.FILL_RANGE[0]:g}–{L.FILL_RANGE[1]:g}; "
            f"neutral ambient {L.AMBIENT_RANGE[0]:g}–{L.AMBIENT_RANGE[1]:g} plus {L.SKY:g} · n_y. Drawn from the "
            "build seed and the object id; recorded in `meta.json` (`lighting`).")
    else:
        light_line = ("Lambertian shading with world-fixed lights (key from above-front-right, weaker fill from "
                      "behind-left, sky/ground ambient), the same for every object, two-sided, no specular.")
    out += [
        "",
        "## How it was made",
        "",
        f"- Command: `{b['command']}` (re-running it resumes; the last run took {b['seconds_last_run']:.0f} s)."
        + (" The SweetHome3D libraries come from Debian's `sweethome3d-furniture` package." if debian else ""),
        *[f"- Reader `{r}`: {_READER_NOTES[r]}" for r in readers if r in _READER_NOTES],
        "- Every model's bounding box is centred at the origin and scaled so the bounding sphere has radius "
        f"{fr['object_radius']}. World Y is up.",
        f"- Cameras look at the origin from distance {fr['camera_distance']} with a {fr['fov_deg']}° field of "
        f"view, world Y up, azimuth uniform in [0°, 360°), elevation uniform in [{lo}°, {hi}°]; the cameras "
        f"of an object depend only on the build seed ({index['seed']}) and its id. Frame 0 is such a "
        "random view too.",
        "- Rasterised with OpenGL (Mesa llvmpipe, headless EGL) at 2× the resolution and box-filtered "
        f"in premultiplied colour; straight-alpha RGBA PNGs. {light_line} Materials: diffuse colour or "
        "texture, texture alpha as cut-out (threshold 0.5) where the source says so, partial opacity as "
        "blended transparency.",
        "- `transforms.json` per object follows instant-ngp / nerfstudio (camera-to-world, OpenGL axes, "
        "`fl_x fl_y cx cy w h`); splatgen reads it back into OpenCV cameras with "
        "`splatgen.core.cameras.load_transforms`. The background to composite on is "
        f"{tuple(fr['background'])}.",
        *([f"- `surface.safetensors` per object: {n_surface} points (`points`) with unit normals (`normals`) "
           "on the drawn surface, area-uniform, in the normalised frame of the cameras (cut-out texels "
           "excluded), for Chamfer / F-score / IoU in evaluation "
           "(`splatgen.core.data.surface.load_surface`)."] if n_surface else []),
        f"- {n_tex} of {n} objects are textured; {n_warn} had warnings (usually missing textures, "
        "drawn with their diffuse colour instead) — see each `meta.json` and `build_log.txt`.",
        "",
    ]
    from .sheet import sheet_name

    if sat.get("all", {}).get("objects"):
        out += ["## Colour saturation", "",
                "Mean HSV saturation of the opaque pixels of each object's signature views under its own lights "
                "against the same views flat-lit (its albedo: texture × material colour), from `signature.png`; "
                "a ratio below 1 would mean the lighting washes colours out.", "",
                _table(["source", "objects", "lit", "flat", "lit / flat"],
                       [[k, v["objects"], v["lit"], v["flat"], v["ratio"]]
                        for k, v in [*sat.get("sources", {}).items(), ("all", sat["all"])]]), ""]
    out += ["## Contact sheets", "",
            "View 0 of every object (at most 200 a source, spread evenly), one sheet a source "
            "(`splatgen data sheet` redraws them):", ""]
    out += [f"![{src}]({sheet_name(src)})" for src in sorted(per_source)]
    out += ["", "## Verification", "",
            "The readers were checked on the packages' own files against facts read independently (assimp's "
            "triangle counts and boxes, SPM header boxes, declared unit heights, the games' left/right prop points "
            "and wheels, resolving references) by `splatgen data verify`; splatgen records the results in "
            "`benchmarks/data-verify-*.json`."]
    checks = index.get("verification") or []
    if checks:
        out += [f" For this dataset ({sum(1 for c in checks if c['ok'])} of {len(checks)} checks agree, "
                "`verify.json`):", "",
                _table(["reader", "check", "", "models", "result"],
                       [[c["reader"], c["name"], "ok" if c["ok"] else "**FAILS**", c["n"], c["detail"]] for c in checks])]
    out.append("")
    skipped = index.get("skipped") or {}
    out += ["## Skipped", ""]
    if skipped:
        out += [f"- `{k}`: {v}" for k, v in skipped.items()]
    else:
        out.append("None.")
    out.append("")
    return "\n".join(out)


__all__ = ["dataset_card"]
