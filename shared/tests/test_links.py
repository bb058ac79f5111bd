"""Signed status links: what the notifier writes, the web app accepts until it expires, and
nothing else."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from closedloop import links


def parts(link: str) -> tuple[str, str, str]:
    url = urlsplit(link)
    q = parse_qs(url.query)
    return url.path.rsplit("/", 1)[1], q["exp"][0], q["sig"][0]


def test_a_link_is_good_until_it_expires() -> None:
    link = links.status_link("https://app.test/", "task-1", "s3cret", 60, now=1_000_000)
    assert link.startswith("https://app.test/referrals/task-1?exp=1000060&sig=")
    task, exp, sig = parts(link)
    assert len(sig) == 22
    assert links.check(task, exp, sig, "s3cret", now=1_000_059) == "ok"
    assert links.check(task, exp, sig, "s3cret", now=1_000_061) == "expired"


def test_a_changed_link_is_invalid() -> None:
    task, exp, sig = parts(links.status_link("https://a.test", "task-1", "s3cret", 60, now=0))
    assert links.check("task-2", exp, sig, "s3cret", now=0) == "invalid"
    assert links.check(task, str(int(exp) + 1), sig, "s3cret", now=0) == "invalid"
    assert links.check(task, exp, sig[:-1], "s3cret", now=0) == "invalid"
    assert links.check(task, exp, sig, "other", now=0) == "invalid"
    for bad_exp in (None, "", "-1", "1e9", "9" * 40):
        assert links.check(task, bad_exp, sig, "s3cret", now=0) == "invalid"
    assert links.check(task, exp, None, "s3cret", now=0) == "invalid"
