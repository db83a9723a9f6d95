"""The natural-shift loaders on generated copies of their published layouts, domain selection, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from natural_fixtures import domainbed_folders, domainnet_lists, load_with, write_image

from shiftbench.core.errors import UserError
from shiftbench.data import load_manifest
from shiftbench.shifts import apply_shifts

PACS_DOMAINS = ["art_painting", "cartoon", "photo", "sketch"]
PACS_CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]


@pytest.fixture
def pacs_dir(tmp_path):
    domainbed_folders(tmp_path / "pacs" / "PACS", PACS_DOMAINS, PACS_CLASSES,
                      {"art_painting": 5, "cartoon": 3, "photo": 2, "sketch": 4})
    return tmp_path


def test_domainbed_manifests_state_domainbed_order():
    # DomainBed: environments are the sorted folder names, classes the sorted class folders
    for name in ("pacs", "officehome", "vlcs", "terraincognita"):
        p = load_manifest(name).params
        assert p["domains"] == sorted(p["domains"]) and p["classes"] == sorted(p["classes"]), name
    assert len(load_manifest("officehome").params["classes"]) == 65
    assert load_manifest("terraincognita").params["domains"] == ["location_100", "location_38", "location_43",
                                                                  "location_46"]


def test_pacs_layout_loads_every_domain_with_domainbed_holdout(pacs_dir):
    splits = load_with("pacs", pacs_dir, size=16)
    test = splits.test
    assert test.classes == tuple(PACS_CLASSES) and test.domain_names == tuple(PACS_DOMAINS)
    counts = torch.bincount(test.domains, minlength=4).tolist()
    assert counts == [35, 21, 14, 28]  # every image of every domain, 7 classes each
    # the 20% hold-out is taken within each domain: round(0.2 * n) per domain
    val_counts = torch.bincount(splits.source_val.domains, minlength=4).tolist()
    assert val_counts == [7, 4, 3, 6]
    assert len(splits.source_train) + len(splits.source_val) == len(test)
    # a label is the index of its class folder in the published order
    first_sketch_dog = (test.domains == 3).nonzero()[0].item()
    assert test.labels[first_sketch_dog].item() == 0
    from PIL import Image
    pic = np.array(Image.open(pacs_dir / "pacs/PACS/sketch/dog/pic_000.jpg").convert("RGB"))
    assert torch.equal(test.images[first_sketch_dog], torch.from_numpy(pic).permute(2, 0, 1))
    # deterministic: the same seed gives the same rows
    from shiftbench.data.domain_splits import holdout_rows
    a = holdout_rows(test.domains, 0.2, 0)
    b = holdout_rows(test.domains, 0.2, 0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], holdout_rows(test.domains, 0.2, 1)[1])


def test_domain_subset_selects_source_and_target_domains(pacs_dir):
    splits = load_with("pacs", pacs_dir, size=16)
    source = apply_shifts(splits.source_train, [{"shift": "domain_subset", "domains": ["art_painting", "photo"]}], 0)
    assert set(source.domains.tolist()) == {0, 2}
    assert len(source) == (splits.source_train.domains != 1).logical_and(splits.source_train.domains != 3).sum()
    target = apply_shifts(splits.test, [{"shift": "domain_subset", "domains": ["sketch"]}], 0)
    assert len(target) == 28 and set(target.domains.tolist()) == {3}
    with pytest.raises(ValueError, match="unknown or missing domains"):
        apply_shifts(splits.test, [{"shift": "domain_subset", "domains": ["Sketch"]}], 0)


def test_domainbed_missing_class_folder_is_one_error_naming_the_folder(pacs_dir):
    import shutil
    shutil.rmtree(pacs_dir / "pacs/PACS/cartoon/horse")
    with pytest.raises(UserError, match=r"PACS/cartoon: class folder horse missing"):
        load_with("pacs", pacs_dir, size=16)


def test_domainbed_undecodable_image_is_named(pacs_dir):
    (pacs_dir / "pacs/PACS/photo/dog/pic_000.jpg").write_bytes(b"not an image")
    with pytest.raises(UserError, match=r"photo/dog/pic_000.jpg: cannot read image"):
        load_with("pacs", pacs_dir, size=16)


DN_CLASSES = load_manifest("domainnet126").params["classes"]


def test_domainnet126_class_order_is_the_lists_label_order():
    assert len(DN_CLASSES) == 126 and DN_CLASSES[0] == "aircraft_carrier" and DN_CLASSES[11] == "bird"
    assert DN_CLASSES[30:32] == ["cello", "cell_phone"]
    assert DN_CLASSES[115:117] == ["The_Eiffel_Tower", "The_Great_Wall_of_China"] and DN_CLASSES[125] == "zebra"


@pytest.fixture
def domainnet_dir(tmp_path):
    root = tmp_path / "domainnet126"
    lines = domainnet_lists(root, ["clipart", "painting", "real", "sketch"], DN_CLASSES[:3])
    return tmp_path, root, lines


def test_domainnet126_list_layout(domainnet_dir):
    data_dir, root, lines = domainnet_dir
    # a list line as published: a 126-class label that the tiny fixture also uses
    (root / "real/The_Eiffel_Tower").mkdir(parents=True)
    write_image(root / "real/The_Eiffel_Tower/real_115_000001.jpg", 5, fmt="PNG")
    (root / "real_list.txt").write_text("\n".join(lines["real"] + ["real/The_Eiffel_Tower/real_115_000001.jpg 115"]))
    splits = load_with("domainnet126", data_dir, resize=None, crop=None)
    test = splits.test
    assert test.classes == tuple(DN_CLASSES) and test.domain_names == ("clipart", "painting", "real", "sketch")
    assert torch.bincount(test.domains).tolist() == [3, 3, 4, 3]
    assert test.labels[test.domains == 2].tolist() == [0, 1, 2, 115]


@pytest.mark.parametrize("line, message", [
    ("real/aircraft_carrier/real_000_000000.jpg 126", "line 4: label 126 is outside 0..125"),
    ("real/aircraft_carrier/nowhere.jpg 0", "line 4: listed image real/aircraft_carrier/nowhere.jpg not found"),
    ("real/aircraft_carrier/real_000_000000.jpg", "line 4: expected '<image path> <label>'"),
])
def test_domainnet126_bad_list_lines_name_the_file_and_line(domainnet_dir, line, message):
    data_dir, root, lines = domainnet_dir
    (root / "real_list.txt").write_text("\n".join(lines["real"] + [line]))
    with pytest.raises(UserError, match="real_list.txt: " + message.replace("(", r"\(").replace(")", r"\)")):
        load_with("domainnet126", data_dir, resize=None, crop=None)


def waterbirds_fixture(root):
    """metadata.csv as group_DRO writes it (df.to_csv: an unnamed index column) and the images."""
    rows = []
    for i, (y, place, split) in enumerate([(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (0, 0, 1), (1, 1, 1),
                                           (0, 0, 2), (0, 1, 2), (1, 0, 2), (1, 1, 2), (1, 1, 2)]):
        species = "001.Black_footed_Albatross" if y else "014.Indigo_Bunting"
        name = f"{species}/{species.split('.')[1]}_{i:04d}_{i}.jpg"
        write_image(root / name, i, fmt="PNG")
        rows.append(dict(img_id=i + 1, img_filename=name, y=y, split=split, place=place,
                         place_filename=f"/o/ocean/{i:08d}.jpg"))
    pd.DataFrame(rows).to_csv(root / "metadata.csv")


def test_waterbirds_layout_groups_and_splits(tmp_path):
    root = tmp_path / "waterbirds" / "waterbird_complete95_forest2water2"
    waterbirds_fixture(root)
    splits = load_with("waterbirds", tmp_path, resize=None, crop=None)
    assert (len(splits.source_train), len(splits.source_val), len(splits.test)) == (4, 2, 5)
    assert splits.source_train.groups.tolist() == [0, 1, 2, 3]  # y * 2 + place
    assert splits.test.groups.tolist() == [0, 1, 2, 3, 3] and splits.test.classes == ("landbird", "waterbird")


def test_waterbirds_missing_column_is_one_error(tmp_path):
    root = tmp_path / "waterbirds" / "waterbird_complete95_forest2water2"
    waterbirds_fixture(root)
    df = pd.read_csv(root / "metadata.csv", index_col=0).drop(columns=["place"])
    df.to_csv(root / "metadata.csv")
    with pytest.raises(UserError, match=r"metadata.csv: missing column place"):
        load_with("waterbirds", tmp_path, resize=None, crop=None)


def test_camelyon17_layout_and_official_splits(tmp_path):
    root = tmp_path / "camelyon17" / "camelyon17_v1.0"
    rows = []
    for i, (center, split, tumor) in enumerate([(0, 0, 0), (3, 0, 1), (4, 1, 1), (1, 0, 0), (1, 1, 1), (2, 0, 1)]):
        patient, node, x, y = f"{i:03d}", i % 5, 100 * i, 200 * i
        rows.append(dict(patient=patient, node=node, x_coord=x, y_coord=y, tumor=tumor, slide=i, center=center,
                         split=split))
        write_image(root / f"patches/patient_{patient}_node_{node}/patch_patient_{patient}_node_{node}_x_{x}_y_{y}.png",
                    i, side=96)
    pd.DataFrame(rows).to_csv(root / "metadata.csv")
    splits = load_with("camelyon17", tmp_path)
    assert splits.source_train.labels.tolist() == [0, 1] and splits.source_val.labels.tolist() == [1]
    test = splits.test
    assert test.domain_names == ("val", "test") and test.domains.tolist() == [0, 0, 1]  # hospital 1 -> val, 2 -> test
    assert test.groups.tolist() == [1, 1, 2] and test.images.shape[-1] == 96


def test_iwildcam_layout_and_label_range(tmp_path):
    root = tmp_path / "iwildcam" / "iwildcam_v2.0"
    rows = []
    for i, (split, y) in enumerate([("train", 0), ("train", 3), ("id_val", 3), ("val", 1), ("test", 2),
                                    ("id_test", 0)]):
        rows.append(dict(split=split, location_remapped=i, location=i + 10, sequence_remapped=i, seq_id=f"s{i}",
                         y=y, category_id=y * 7, datetime="2013-06-05 10:00:00.000", filename=f"{i:08x}.jpg",
                         image_id=f"id{i}"))
        write_image(root / "train" / f"{i:08x}.jpg", i, fmt="PNG")
    pd.DataFrame(rows).to_csv(root / "metadata.csv")
    splits = load_with("iwildcam", tmp_path, size=16)
    assert splits.test.domain_names == ("val", "test", "id_test") and splits.test.labels.tolist() == [1, 2, 0]
    assert splits.test.meta["metrics"] == ["macro_f1"]
    rows[0]["y"] = 182
    pd.DataFrame(rows).to_csv(root / "metadata.csv")
    with pytest.raises(UserError, match=r"iwildcam_v2.0/metadata.csv: label 182 is outside 0..181"):
        load_with("iwildcam", tmp_path, size=16)


def test_fmow_time_split_and_regions(tmp_path):
    root = tmp_path / "fmow" / "fmow_v1.1"
    classes = load_manifest("fmow").params["classes"]
    rows = [("train", "airport", "USA", "2010-03-01T10:00:00Z"), ("val", "zoo", "FRA", "2011-03-01T10:00:00Z"),
            ("seq", "barn", "USA", "2012-03-01T10:00:00Z"), ("val", "barn", "KEN", "2014-03-01T10:00:00Z"),
            ("test", "dam", "XXX", "2017-03-01T10:00:00Z"), ("test", "park", "FRA", "2012-05-01T10:00:00Z")]
    pd.DataFrame([dict(split=s, category=c, country_code=cc, timestamp=t) for s, c, cc, t in rows]
                 ).to_csv(root / "rgb_metadata.csv" if root.mkdir(parents=True) is None else None, index=False)
    pd.DataFrame({"alpha-3": ["USA", "FRA", "KEN"], "region": ["Americas", "Europe", "Africa"]}).to_csv(
        root / "country_code_mapping.csv", index=False)
    for i in range(len(rows)):
        if rows[i][0] != "seq":
            write_image(root / "images" / f"rgb_img_{i}.png", i)
    splits = load_with("fmow", tmp_path)
    assert splits.source_train.labels.tolist() == [0] and splits.source_val.labels.tolist() == [classes.index("zoo")]
    test = splits.test
    # rows 3 (2014: OOD val), 4 (2017: OOD test), 5 (2012 test: ID test); the seq row is dropped
    assert [test.domain_names[d] for d in test.domains] == ["val", "test", "id_test"]
    assert [test.meta["group_names"][g] for g in test.groups] == ["Africa", "Other", "Europe"]


def test_metashift_layout(tmp_path):
    root = tmp_path / "metashift" / "Domain-Generalization-Cat-Dog"
    for split, cls, subset, n in [("train", "cat", "cat(sofa)", 3), ("train", "cat", "cat(bed)", 2),
                                  ("train", "dog", "dog(bed)", 4), ("test", "dog", "dog(shelf)", 2),
                                  ("test", "cat", "cat(shelf)", 1)]:
        for i in range(n):
            write_image(root / split / cls / subset / f"{2300000 + i}.jpg", i, fmt="PNG")
    splits = load_with("metashift", tmp_path, size=16, val_fraction=0.25)
    names = splits.test.domain_names
    assert names == ("cat(bed)", "cat(shelf)", "cat(sofa)", "dog(bed)", "dog(shelf)")  # sorted
    assert len(splits.source_train) + len(splits.source_val) == 9
    target = apply_shifts(splits.test, [{"shift": "domain_subset", "domains": ["dog(shelf)"]}], 0)
    assert target.labels.tolist() == [1, 1]


def test_macro_f1_agrees_with_sklearn():
    from sklearn.metrics import f1_score

    from shiftbench.evaluation.metrics import macro_f1

    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        y_true = torch.randint(0, 6, (50,), generator=g)
        y_pred = torch.randint(0, 8, (50,), generator=g)
        expected = f1_score(y_true.numpy(), y_pred.numpy(), average="macro", labels=np.unique(y_true.numpy()),
                            zero_division=0)
        assert macro_f1(y_pred, y_true) == pytest.approx(expected, abs=1e-12)


def test_worst_group_and_worst_region_accuracy_by_hand():
    from shiftbench.evaluation.metrics import compute_metrics, worst_group_accuracy, worst_region_accuracy

    y_true = torch.tensor([0, 0, 1, 1, 1, 0, 0, 1])
    y_pred = torch.tensor([0, 1, 1, 1, 0, 0, 0, 0])
    groups = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2])  # accuracies 1/2, 2/3, 2/3
    assert worst_group_accuracy(y_pred, y_true, groups) == pytest.approx(0.5)
    # region 0 is 'Other': left out of the worst region, as WILDS does for FMoW
    assert worst_region_accuracy(y_pred, y_true, groups, ["Other", "Asia", "Europe"]) == pytest.approx(2 / 3)
    logits = torch.nn.functional.one_hot(y_pred, 2).double()
    out = compute_metrics(logits, y_true, groups=groups,
                          meta={"metrics": ["macro_f1", "worst_region_accuracy"], "group_names": ["Other", "A", "B"]})
    assert out["worst_group_accuracy"] == pytest.approx(0.5) and out["worst_region_accuracy"] == pytest.approx(2 / 3)
    assert "macro_f1" in out and "macro_f1" not in compute_metrics(logits, y_true)


def test_new_benchmarks_load_and_name_their_source_domains():
    from shiftbench.run.benchmark import load_benchmark

    pacs = load_benchmark("pacs")
    to_sketch = pacs.scenario("to-sketch")
    assert to_sketch.family == "natural"
    (train_shift,) = to_sketch.train_shifts
    assert train_shift["shift"] == "domain_subset" and list(train_shift["domains"]) == ["art_painting", "cartoon", "photo"]
    dn = load_benchmark("domainnet126")
    assert [s.name for s in dn.scenarios if s.segments] == ["real-to-clipart-painting-sketch"]
    for name in ("officehome", "waterbirds", "camelyon17", "metashift"):
        assert load_benchmark(name).scenarios
    assert yaml.safe_load(open(load_manifest("waterbirds").source))["params"]["layout"] == "waterbirds"
