"""Street offices' monthly rosters: the file drops (GB18030/GBK CSV and Excel with merged headers)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import xlsxwriter

from simulator import mess, vocab
from simulator.mess import MessProfile
from simulator.tables import TRUTH_SCHEMA

ROSTER_COLUMNS = ["网格", "姓名", "身份证号", "联系电话", "住址", "人员类别", "企业名称"]
DEPARTMENT, TABLE = "streets", "street_rosters"
FOLDER = "drops/streets"


class RosterDrops:
    """Writers kept open across generation units: one file per district for the drop date."""

    def __init__(self, out: Path, drop_date: dt.date):
        self.folder = out / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        self.drop_date = drop_date
        self.rows_written: dict[str, int] = {}
        self._csv: dict[str, tuple] = {}
        self._xlsx: dict[str, tuple] = {}

    def _file(self, k: int) -> str:
        code, name = vocab.DISTRICTS[k]
        ext = "csv" if k % 2 == 0 else "xlsx"
        return f"{code}_{name}_{self.drop_date:%Y%m%d}.{ext}"

    def _title(self, k: int) -> str:
        return f"{vocab.DISTRICTS[k][1]}街道人员登记表（{self.drop_date:%Y年%m月}）"

    def _writer(self, k: int):
        fname = self._file(k)
        if fname.endswith(".csv"):
            if fname not in self._csv:
                # kept open across generation units; closed in close()
                fh = open(self.folder / fname, "w", encoding="gb18030", newline="")  # noqa: SIM115
                w = csv.writer(fh)
                w.writerow([self._title(k)])
                w.writerow([])
                w.writerow(ROSTER_COLUMNS)
                self._csv[fname] = (fh, w)
            return fname, self._csv[fname][1].writerow
        if fname not in self._xlsx:
            wb = xlsxwriter.Workbook(str(self.folder / fname), {"constant_memory": True})
            ws = wb.add_worksheet("人员名单")
            bold = wb.add_format({"bold": True, "align": "center"})
            ws.merge_range(0, 0, 0, len(ROSTER_COLUMNS) - 1, self._title(k), bold)
            ws.merge_range(1, 0, 1, 2, "基本信息", bold)
            ws.merge_range(1, 3, 1, len(ROSTER_COLUMNS) - 1, "联系与就业", bold)
            for j, c in enumerate(ROSTER_COLUMNS):
                ws.write(2, j, c, bold)
            state = {"row": 3}

            def write(values, ws=ws, state=state):
                for j, v in enumerate(values):
                    if v is not None:
                        ws.write_string(state["row"], j, str(v))
                state["row"] += 1

            self._xlsx[fname] = (wb, write)
        return fname, self._xlsx[fname][1]

    def add(
        self,
        persons: pl.DataFrame,
        enterprises: pl.DataFrame,
        rng: np.random.Generator,
        profile: MessProfile,
        rate: float = 0.15,
    ) -> pl.DataFrame:
        """Write roster rows for a sample of the unit's persons; returns their truth rows."""
        n_pick = int(enterprises.height * rate)
        if n_pick == 0 or persons.height == 0:
            return pl.DataFrame(schema=TRUTH_SCHEMA)
        p = persons.select(pl.all().gather(rng.integers(0, persons.height, n_pick))).unique(
            "person_id", maintain_order=True
        )
        n = p.height
        names = enterprises.select(employer_id="entity_id", employer_name="name")
        p = p.join(names, on="employer_id", how="left", maintain_order="left")
        ids = mess.resident_id(p["id_number"], p["birth"], rng, profile, old_form_rate=0.05)
        ids = mess.null_markers(ids, rng, profile.null_marker)
        phone = mess.null_markers(p["phone"], rng, 0.1)
        district = rng.choice(len(vocab.DISTRICTS), n, p=vocab.DISTRICT_WEIGHTS)
        grid = [
            f"{vocab.DISTRICTS[d][1]}第{g}网格" for d, g in zip(district, rng.integers(1, 40, n), strict=True)
        ]
        kind = np.array(vocab.ROSTER_KINDS)[(rng.random(n) < 0.45).astype(int)]
        addr = [
            f"{vocab.CITY}{vocab.DISTRICTS[d][1]}{s}{no}号"
            for d, s, no in zip(district, rng.choice(vocab.STREETS, n), rng.integers(1, 999, n), strict=True)
        ]
        pks = []
        for i, row in enumerate(
            zip(
                grid,
                mess.person_name(p["name"], rng, profile).to_list(),
                ids.to_list(),
                phone.to_list(),
                addr,
                kind,
                p["employer_name"].to_list(),
                strict=True,
            )
        ):
            fname, write = self._writer(int(district[i]))
            if rng.random() < 0.02:
                write([None] * len(ROSTER_COLUMNS))  # the blank lines street offices leave in
                self.rows_written[fname] = self.rows_written.get(fname, 0) + 1
            write(list(row))
            self.rows_written[fname] = self.rows_written.get(fname, 0) + 1
            pks.append(f"{fname}#{self.rows_written[fname]}")
        return pl.DataFrame(
            {
                "department": DEPARTMENT,
                "table": TABLE,
                "pk": pks,
                "role": "subject",
                "entity_type": "person",
                "entity_id": p["person_id"],
            },
            schema=TRUTH_SCHEMA,
        )

    def close(self) -> list[str]:
        for fh, _ in self._csv.values():
            fh.close()
        for wb, _ in self._xlsx.values():
            wb.close()
        return sorted([*self._csv, *self._xlsx])
