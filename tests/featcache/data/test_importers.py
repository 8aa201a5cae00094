"""Importers: UCF-101 / HMDB-51 / Stanford40 trees in their real layouts -> folder layout.

The source trees are built in tmp_path, from the clips and photos in ../shared/data/real
(symlinked, never copied into the repo) or, for a user's clone without them, from tiny
files generated here.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from featcache.data.dataset import FolderDataset
from featcache.errors import DatasetError
from featcache.data.importers import ClassMapping, import_hmdb51, import_stanford40, import_ucf101
from featcache.data.importers.stanford40 import carve_val
from tests.media_fixtures import make_image, make_video

# Official class lists, to check the shipped mapping names real classes.
UCF101_CLASSES = """ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching BaseballPitch
Basketball BasketballDunk BenchPress Biking Billiards BlowDryHair BlowingCandles BodyWeightSquats Bowling
BoxingPunchingBag BoxingSpeedBag BreastStroke BrushingTeeth CleanAndJerk CliffDiving CricketBowling
CricketShot CuttingInKitchen Diving Drumming Fencing FieldHockeyPenalty FloorGymnastics FrisbeeCatch
FrontCrawl GolfSwing Haircut Hammering HammerThrow HandstandPushups HandstandWalking HeadMassage HighJump
HorseRace HorseRiding HulaHoop IceDancing JavelinThrow JugglingBalls JumpingJack JumpRope Kayaking Knitting
LongJump Lunges MilitaryParade Mixing MoppingFloor Nunchucks ParallelBars PizzaTossing PlayingCello
PlayingDaf PlayingDhol PlayingFlute PlayingGuitar PlayingPiano PlayingSitar PlayingTabla PlayingViolin
PoleVault PommelHorse PullUps Punch PushUps Rafting RockClimbingIndoor RopeClimbing Rowing SalsaSpin
ShavingBeard Shotput SkateBoarding Skiing Skijet SkyDiving SoccerJuggling SoccerPenalty StillRings
SumoWrestling Surfing Swing TableTennisShot TaiChi TennisSwing ThrowDiscus TrampolineJumping Typing
UnevenBars VolleyballSpiking WalkingWithDog WallPushups WritingOnBoard YoYo""".split()
HMDB51_CLASSES = """brush_hair cartwheel catch chew clap climb climb_stairs dive draw_sword dribble drink eat
fall_floor fencing flic_flac golf handstand hit hug jump kick kick_ball kiss laugh pick pour pullup punch push
pushup ride_bike ride_horse run shake_hands shoot_ball shoot_bow shoot_gun sit situp smile smoke somersault
stand swing_baseball sword sword_exercise talk throw turn walk wave""".split()
STANFORD40_ACTIONS = """applauding blowing_bubbles brushing_teeth cleaning_the_floor climbing cooking
cutting_trees cutting_vegetables drinking feeding_a_horse fishing fixing_a_bike fixing_a_car gardening
holding_an_umbrella jumping looking_through_a_microscope looking_through_a_telescope playing_guitar
playing_violin pouring_liquid pushing_a_cart reading phoning riding_a_bike riding_a_horse rowing_a_boat
running shooting_an_arrow smoking taking_photos texting_message throwing_frisby using_a_computer
walking_the_dog washing_dishes watching_TV waving_hands writing_on_a_board writing_on_a_book""".split()
PAPER_CLASSES = [
    "brushing_teeth", "clap", "wave", "basketball", "basketball_dunk", "dribble", "volleyball_spiking",
    "high_jump", "long_jump", "pole_vault", "balance_beam", "parallel_bars", "pommel_horse", "uneven_bars",
    "trampoline_jumping", "kayaking", "rowing", "surfing", "fencing", "walk", "run", "hula_hoop",
    "ice_dancing", "kick_ball", "cricket_shot", "table_tennis_shot", "walking_with_dog",
]  # fmt: skip


# -- source-tree builders (the real public layouts) -----------------------------
def write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def build_ucf101(src: Path, clips: dict[str, list[Path]]) -> Path:
    """UCF-101/<Class>/v_*.avi + ucfTrainTestlist/ with split 1; alternate clips train/test."""
    names = sorted(clips)
    train, test = [], []
    for class_name in names:
        for i, clip in enumerate(sorted(clips[class_name], key=lambda p: p.name)):
            target = src / "UCF-101" / class_name / clip.name.removeprefix("ucf101_")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(clip.resolve(), target)
            rel = f"{class_name}/{target.name}"
            (train if i % 2 == 0 else test).append((rel, names.index(class_name) + 1))
    write_lines(src / "ucfTrainTestlist" / "classInd.txt", [f"{i} {n}" for i, n in enumerate(names, start=1)])
    write_lines(src / "ucfTrainTestlist" / "trainlist01.txt", [f"{r} {i}" for r, i in train])
    write_lines(src / "ucfTrainTestlist" / "testlist01.txt", [r for r, _ in test])
    return src


def build_hmdb51(src: Path, clips: dict[str, list[Path]]) -> Path:
    """hmdb51/<class>/<clip> + testTrainMulti_7030_splits/<class>_test_split1.txt (1 train, 2 test, 0 unused)."""
    for class_name, paths in clips.items():
        lines = []
        for i, clip in enumerate(sorted(paths, key=lambda p: p.name)):
            target = src / "hmdb51" / class_name / clip.name.removeprefix("hmdb51_")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(clip.resolve(), target)
            lines.append(f"{target.name} {(1, 2, 0)[i % 3]} ")  # real files end lines with a space
        write_lines(src / "testTrainMulti_7030_splits" / f"{class_name}_test_split1.txt", lines)
    return src


def build_stanford40(src: Path, images: dict[str, list[Path]]) -> Path:
    """JPEGImages/<action>_<nnn>.jpg + ImageSplits/{actions.txt,<action>_train.txt,<action>_test.txt}."""
    rows = []
    for action, paths in sorted(images.items()):
        names = []
        for i, image in enumerate(sorted(paths, key=lambda p: p.name), start=1):
            name = f"{action}_{i:03d}{image.suffix.lower()}"
            target = src / "JPEGImages" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(image.resolve(), target)
            names.append(name)
        cut = max(1, (2 * len(names)) // 3)
        write_lines(src / "ImageSplits" / f"{action}_train.txt", names[:cut])
        write_lines(src / "ImageSplits" / f"{action}_test.txt", names[cut:])
        rows.append(f"{action}\t{len(names)}")
    write_lines(src / "ImageSplits" / "actions.txt", ["action_name\tnumber_of_images", *rows])
    return src


def real_files(real_data: Path, kind: str, prefix: str) -> dict[str, list[Path]]:
    """{original source label: [files]} for the real files whose name starts with ``prefix``."""
    out: dict[str, list[Path]] = {}
    with open(real_data / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            name = Path(row["path"]).name
            if row["kind"] == kind and name.startswith(prefix):
                label = row["orig_label"] if kind == "videos" else row["cls"]
                out.setdefault(label, []).append(real_data / row["path"])
    return out


def write_mapping(path: Path, classes: dict) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "classes": classes}, sort_keys=False))
    return path



@pytest.fixture
def synthetic_sources(tmp_path):
    """Small UCF-101, HMDB-51 and Stanford40 trees made of generated files."""
    media = tmp_path / "media"
    ucf = {c: [make_video(media / f"v_{c}_g0{i}_c01.avi", seed=i) for i in range(1, 5)]
           for c in ("Basketball", "Fencing", "ApplyEyeMakeup")}
    hmdb = {c: [make_video(media / f"{c}_clip_{i}.avi", seed=10 + i) for i in range(6)] for c in ("wave", "run", "chew")}
    stills = {a: [make_image(media / f"{a}{i}.jpg", seed=i) for i in range(9)]
              for a in ("waving_hands", "running", "cooking")}
    return {
        "ucf101": build_ucf101(tmp_path / "ucf", ucf),
        "hmdb51": build_hmdb51(tmp_path / "hmdb", hmdb),
        "stanford40": build_stanford40(tmp_path / "stanford", stills),
        "mapping": write_mapping(tmp_path / "small.yaml", {
            "basketball": {"ucf101": ["Basketball"]},
            "fencing": {"ucf101": ["Fencing"]},
            "wave": {"hmdb51": ["wave"], "stanford40": ["waving_hands"]},
            "run": {"hmdb51": ["run"], "stanford40": ["running"]},
        }),
    }  # fmt: skip


# -- the shipped mapping --------------------------------------------------------
def test_shipped_ssvac40_mapping_names_real_classes():
    mapping = ClassMapping.load()  # the default
    assert mapping.name == "ssvac40"
    assert sorted(mapping.classes) == sorted(PAPER_CLASSES)
    official = {"ucf101": UCF101_CLASSES, "hmdb51": HMDB51_CLASSES, "stanford40": STANFORD40_ACTIONS}
    for source, names in official.items():
        assert set(mapping.source_classes(source)) <= set(names), source
    video_classes = set(mapping.source_classes("ucf101").values()) | set(mapping.source_classes("hmdb51").values())
    assert video_classes == set(PAPER_CLASSES)  # every class has videos
    # The paper: wave, walk, run and dribble come from HMDB-51; balance beam, brushing teeth, fencing, kayaking from UCF-101.
    assert {mapping.target("hmdb51", c) for c in ("wave", "walk", "run", "dribble")} == {"wave", "walk", "run", "dribble"}
    assert mapping.target("ucf101", "BrushingTeeth") == "brushing_teeth" and mapping.target("ucf101", "Fencing") == "fencing"
    assert mapping.target("hmdb51", "fencing") is None
    assert mapping.target("stanford40", "applauding") == "clap"


def test_mapping_errors(tmp_path):
    with pytest.raises(DatasetError, match="mapped twice"):
        ClassMapping.from_dict({"classes": {"a": {"ucf101": ["X"]}, "b": {"ucf101": ["X"]}}})
    with pytest.raises(DatasetError, match="unknown source 'kinetics'"):
        ClassMapping.from_dict({"classes": {"a": {"kinetics": ["X"]}}})
    with pytest.raises(DatasetError, match="class folder name"):
        ClassMapping.from_dict({"classes": {"a/b": {"ucf101": ["X"]}}})
    with pytest.raises(DatasetError, match="non-empty 'classes:'"):
        ClassMapping.from_dict({"name": "x"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [unclosed\n")
    with pytest.raises(DatasetError, match=f"{bad}: not valid YAML"):
        ClassMapping.load(bad)
    with pytest.raises(DatasetError, match="class mapping file not found"):
        ClassMapping.load(tmp_path / "missing.yaml")
    with pytest.raises(DatasetError, match="unknown class mapping 'nosuch'"):
        ClassMapping.load("nosuch")
    assert ClassMapping.load("none").is_identity


# -- real data ------------------------------------------------------------------
def test_real_ucf101_and_hmdb51_with_shipped_mapping(real_data, tmp_path):
    ucf_clips = real_files(real_data, "videos", "ucf101_")
    hmdb_clips = real_files(real_data, "videos", "hmdb51_")
    ucf = build_ucf101(tmp_path / "ucf", ucf_clips)
    hmdb = build_hmdb51(tmp_path / "hmdb", hmdb_clips)
    out = tmp_path / "ssvac"

    summary = import_ucf101(ucf, out, progress=False)
    # Of the real UCF-101 classes, Basketball, Fencing and IceDancing are SSVAC-40 classes.
    mapped = {c: n for c, n in ucf_clips.items() if c in ("Basketball", "Fencing", "IceDancing")}
    assert set(summary.counts) == {"basketball", "fencing", "ice_dancing"}
    assert summary.total == sum(len(v) for v in mapped.values())
    assert set(summary.skipped_classes) == set(ucf_clips) - set(mapped)
    assert summary.counts["basketball"] == {"train": 2, "test": 1}

    summary = import_hmdb51(hmdb, out, progress=False)
    assert set(summary.counts) == {"wave"}
    assert summary.counts["wave"] == {"train": 1, "test": 1} and summary.unused == 1

    dataset = FolderDataset(out)
    assert dataset.classes == ClassMapping.load().classes
    assert (out / "classes.txt").read_text().split() == dataset.classes
    videos = dataset.videos()
    assert len(videos) == 5 + 2
    assert {dataset.classes[s.label] for s in dataset.videos("test")} == {"basketball", "wave"}
    for sample in videos:
        link = dataset.path(sample)
        assert link.is_symlink() and os.path.isabs(os.readlink(link))
        assert link.resolve().is_relative_to(real_data.resolve())


def test_real_ssvac_stills_and_videos_in_one_root(real_data, tmp_path):
    """The SSVAC-40 setting: Stanford40 stills and UCF-101/HMDB-51 videos share one ROOT and class list."""
    stills = {a: p for a, p in real_files(real_data, "stills", "").items() if a in ("basketball", "kick_ball", "baseball")}
    stanford = build_stanford40(tmp_path / "stanford", stills)
    ucf = build_ucf101(tmp_path / "ucf", real_files(real_data, "videos", "ucf101_"))
    hmdb = build_hmdb51(tmp_path / "hmdb", real_files(real_data, "videos", "hmdb51_"))
    mapping = ClassMapping.load(write_mapping(tmp_path / "real.yaml", {
        "basketball": {"ucf101": ["Basketball"], "stanford40": ["basketball"]},
        "riding_horse": {"ucf101": ["HorseRiding"], "hmdb51": ["ride_horse"]},
        "wave": {"hmdb51": ["wave"]},
        "baseball": {"stanford40": ["baseball"]},
    }))  # fmt: skip
    out = tmp_path / "root"
    s40 = import_stanford40(stanford, out, mapping=mapping, val_fraction=0.25, progress=False)
    import_ucf101(ucf, out, mapping=mapping, progress=False)
    import_hmdb51(hmdb, out, mapping=mapping, progress=False)
    assert s40.skipped_classes == {"kick_ball": len(stills["kick_ball"])}

    dataset = FolderDataset(out)
    assert dataset.classes == ["basketball", "riding_horse", "wave", "baseball"]
    assert dataset.splits("stills") == ["train", "val", "test"]
    assert dataset.splits("videos") == ["train", "test"]
    still_classes = {dataset.classes[s.label] for s in dataset.stills()}
    video_classes = {dataset.classes[s.label] for s in dataset.videos()}
    assert still_classes == {"basketball", "baseball"} and video_classes == {"basketball", "riding_horse", "wave"}
    assert len(dataset.stills()) == len(stills["basketball"]) + len(stills["baseball"])
    assert s40.counts["baseball"] == {"train": 3, "val": 1, "test": 2}
    riding = [s for s in dataset.videos() if dataset.classes[s.label] == "riding_horse"]
    assert {Path(s.path).name for s in riding} >= {"v_HorseRiding_g01_c03.mp4"}  # UCF-101 and HMDB-51 merged
    for name in ("ucf101", "hmdb51", "stanford40"):
        record = json.loads((out / f"import-{name}.json").read_text())
        assert record["complete"] is True and record["options"]["mapping"] == "real"


# -- generated data (runs in every clone) ----------------------------------------
def test_synthetic_import_all_three(synthetic_sources, tmp_path):
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    out = tmp_path / "root"
    ucf = import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)
    hmdb = import_hmdb51(synthetic_sources["hmdb51"], out, mapping=mapping, progress=False)
    s40 = import_stanford40(synthetic_sources["stanford40"], out, mapping=mapping, val_fraction=0.2, progress=False)

    assert ucf.counts == {"basketball": {"train": 2, "test": 2}, "fencing": {"train": 2, "test": 2}}
    assert ucf.skipped_classes == {"ApplyEyeMakeup": 4}
    # HMDB ids cycle 1, 2, 0: of 6 clips, 2 train, 2 test, 2 unused; chew is unmapped.
    assert hmdb.counts == {"wave": {"train": 2, "test": 2}, "run": {"train": 2, "test": 2}}
    assert hmdb.unused == 6 and hmdb.skipped_classes == {"chew": 4}  # unused: 2 per class, chew too
    # Stanford40: 6 train (1 carved into val at 0.2), 3 test per action.
    assert s40.counts == {"wave": {"train": 5, "val": 1, "test": 3}, "run": {"train": 5, "val": 1, "test": 3}}
    assert s40.skipped_classes == {"cooking": 9}

    dataset = FolderDataset(out)
    assert dataset.classes == ["basketball", "fencing", "wave", "run"]
    assert dataset.summary() == {"stills": {"train": 10, "val": 2, "test": 6}, "videos": {"train": 8, "test": 8}}
    # Source class order is the mapping's, and files keep their source names.
    assert "stills/val/wave/" in next(s.path for s in dataset.stills("val") if dataset.classes[s.label] == "wave")
    assert all(Path(s.path).name.startswith("v_Basketball_") for s in dataset.videos() if s.label == 0)


def test_rerun_is_idempotent(synthetic_sources, tmp_path):
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    out = tmp_path / "root"
    first = import_hmdb51(synthetic_sources["hmdb51"], out, mapping=mapping, progress=False)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    second = import_hmdb51(synthetic_sources["hmdb51"], out, mapping=mapping, progress=False)
    assert (first.linked, first.present) == (8, 0)
    assert (second.linked, second.present) == (0, 8)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    # A crash half-way leaves some links: the rerun makes just the missing ones.
    missing = next((out / "videos" / "test" / "run").iterdir())
    missing.unlink()
    third = import_hmdb51(synthetic_sources["hmdb51"], out, mapping=mapping, progress=False)
    assert (third.linked, third.present) == (1, 7) and missing.is_symlink()


def test_conflict_is_an_error_and_changes_nothing(synthetic_sources, tmp_path):
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    out = tmp_path / "root"
    import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)
    links = sorted((out / "videos" / "train" / "basketball").iterdir())
    links[0].unlink()
    make_video(links[0], frames=3, seed=99)  # a different file at a target path
    links[1].unlink()  # and one link missing, which the failed rerun must not recreate
    with pytest.raises(DatasetError) as info:
        import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)
    assert str(info.value).startswith(f"{links[0]}: conflict: a different file")
    assert not links[1].exists() and not links[1].is_symlink()
    # A link to another file is a conflict too.
    links[0].unlink()
    os.symlink(synthetic_sources["mapping"], links[0])
    with pytest.raises(DatasetError, match="conflict: a link to"):
        import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)


def test_an_identical_copy_is_not_a_conflict(synthetic_sources, tmp_path):
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    out = tmp_path / "root"
    import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)
    link = next((out / "videos" / "test" / "fencing").iterdir())
    data = link.read_bytes()
    link.unlink()
    link.write_bytes(data)
    assert import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False).present == 8


def test_reimport_with_other_options_or_mapping_is_refused(synthetic_sources, tmp_path):
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    out = tmp_path / "root"
    import_stanford40(synthetic_sources["stanford40"], out, mapping=mapping, progress=False)
    with pytest.raises(DatasetError, match=r"other options \(val_fraction\)"):
        import_stanford40(synthetic_sources["stanford40"], out, mapping=mapping, val_fraction=0.3, progress=False)
    other = ClassMapping.from_dict({"name": "other", "classes": {"basketball": {"ucf101": ["Basketball"]}}})
    with pytest.raises(DatasetError, match="classes.txt: lists other classes than mapping 'other'"):
        import_ucf101(synthetic_sources["ucf101"], out, mapping=other, progress=False)
    assert not (out / "videos").exists()


def test_identity_mapping_keeps_source_names(synthetic_sources, tmp_path):
    out = tmp_path / "root"
    summary = import_ucf101(synthetic_sources["ucf101"], out, mapping=ClassMapping.load("none"), progress=False)
    assert not summary.skipped_classes
    assert FolderDataset(out).classes == ["ApplyEyeMakeup", "Basketball", "Fencing"]


def test_missing_split_files_name_the_path(synthetic_sources, tmp_path):
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    out = tmp_path / "root"
    testlist = synthetic_sources["ucf101"] / "ucfTrainTestlist" / "testlist01.txt"
    testlist.unlink()
    with pytest.raises(DatasetError, match=f"^{testlist}: split file not found$"):
        import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)
    with pytest.raises(DatasetError, match="trainlist02.txt: split file not found"):
        import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, split=2, progress=False)

    wave = synthetic_sources["hmdb51"] / "testTrainMulti_7030_splits" / "wave_test_split1.txt"
    wave.unlink()
    with pytest.raises(DatasetError, match=f"^{wave}: split file not found$"):
        import_hmdb51(synthetic_sources["hmdb51"], out, mapping=mapping, progress=False)

    running = synthetic_sources["stanford40"] / "ImageSplits" / "running_test.txt"
    running.unlink()
    with pytest.raises(DatasetError, match=f"^{running}: split file not found$"):
        import_stanford40(synthetic_sources["stanford40"], out, mapping=mapping, progress=False)
    assert not out.exists()  # nothing written by a failed import


def test_bad_split_lines_and_missing_files(synthetic_sources, tmp_path):
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    out = tmp_path / "root"
    lists = synthetic_sources["ucf101"] / "ucfTrainTestlist"
    with open(lists / "trainlist01.txt", "a") as f:
        f.write("Basketball/v_Basketball_g99_c01.avi 3\n")
    with pytest.raises(DatasetError, match=r"trainlist01.txt:\d+: label 3 is 'Fencing', but the clip is in 'Basketball'"):
        import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)
    lines = (lists / "trainlist01.txt").read_text().splitlines()[:-1]
    (lists / "trainlist01.txt").write_text("\n".join(lines + ["Basketball/v_Basketball_g99_c01.avi 2"]) + "\n")
    missing = synthetic_sources["ucf101"] / "UCF-101" / "Basketball" / "v_Basketball_g99_c01.avi"
    with pytest.raises(DatasetError, match=f"^{missing}: listed in .*trainlist01.txt:{len(lines) + 1} but not found"):
        import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)
    (lists / "testlist01.txt").write_text("Dancing/v_Dancing_g01_c01.avi\n")
    (lists / "trainlist01.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="class 'Dancing' is not in .*classInd.txt"):
        import_ucf101(synthetic_sources["ucf101"], out, mapping=mapping, progress=False)

    run = synthetic_sources["hmdb51"] / "testTrainMulti_7030_splits" / "run_test_split1.txt"
    run.write_text(run.read_text() + "run_clip_9.avi 7\n")
    with pytest.raises(DatasetError, match=r"run_test_split1.txt:7: expected '<clip> <0\|1\|2>'"):
        import_hmdb51(synthetic_sources["hmdb51"], out, mapping=mapping, progress=False)


def test_video_locator_tolerates_case_and_reencoded_extension(synthetic_sources, tmp_path):
    """Copies of UCF-101 differ in case (HandStandPushups) or were re-encoded to mp4."""
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    folder = synthetic_sources["ucf101"] / "UCF-101" / "Fencing"
    clip = folder / "v_Fencing_g01_c01.avi"
    clip.rename(folder / "v_FENCING_g01_c01.mp4")
    summary = import_ucf101(synthetic_sources["ucf101"], tmp_path / "root", mapping=mapping, progress=False)
    assert summary.counts["fencing"] == {"train": 2, "test": 2}
    assert (tmp_path / "root" / "videos" / "train" / "fencing" / "v_FENCING_g01_c01.mp4").is_symlink()


def test_stanford40_val_carve_is_seeded_stratified_and_disjoint():
    files = [f"a_{i:03d}.jpg" for i in range(50)]
    train, val = carve_val(files, 0.1, seed=0, action="a")
    assert len(val) == 5 and len(train) == 45 and not set(train) & set(val)
    assert sorted(train + val) == files
    assert carve_val(list(reversed(files)), 0.1, seed=0, action="a") == (train, val)  # input order ignored
    assert carve_val(files, 0.1, seed=1, action="a")[1] != val
    assert carve_val(files, 0.1, seed=0, action="b")[1] != val  # per-class streams
    assert [len(part) for part in carve_val(files[:2], 0.1, seed=0, action="a")] == [1, 1]
    assert carve_val(files[:1], 0.5, seed=0, action="a") == (files[:1], [])
    assert carve_val(files, 0.0, seed=0, action="a") == (files, [])


def test_cli_import_and_errors(synthetic_sources, tmp_path):
    from cli.app import app

    runner = CliRunner()
    out = tmp_path / "root"
    args = ["data", "import-hmdb51", str(synthetic_sources["hmdb51"]), str(out), "--mapping", str(synthetic_sources["mapping"])]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "imported 8 videos: 8 linked, 0 already present" in result.output
    assert "skipped 4 file(s) of 1 unmapped class(es) (chew)" in result.output
    result = runner.invoke(app, args[:4] + ["--split", "4"])
    assert result.exit_code != 0
    result = runner.invoke(app, ["data", "import-stanford40", str(tmp_path / "nowhere"), str(out)])
    assert isinstance(result.exception, DatasetError) and "nowhere: Stanford40 folder not found" in str(result.exception)


def test_ucf101_source_given_as_the_video_folder_or_with_splits_dir(synthetic_sources, tmp_path):
    mapping = ClassMapping.load(synthetic_sources["mapping"])
    ucf = synthetic_sources["ucf101"]
    # SRC is UCF-101/ itself: ucfTrainTestlist/ is found beside it.
    summary = import_ucf101(ucf / "UCF-101", tmp_path / "a", mapping=mapping, progress=False)
    assert summary.total == 8
    # Split lists elsewhere, named with --splits-dir.
    moved = tmp_path / "lists"
    (ucf / "ucfTrainTestlist").rename(moved)
    with pytest.raises(DatasetError, match="no split-list folder holding classInd.txt"):
        import_ucf101(ucf, tmp_path / "b", mapping=mapping, progress=False)
    assert import_ucf101(ucf, tmp_path / "b", mapping=mapping, splits_dir=moved, progress=False).total == 8
