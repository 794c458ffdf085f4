"""The admin pages of the web console in a real browser (Playwright + Debian's Chromium) against the
whole product served over HTTP (real Redis, SQLite, the knowledge index and the bot worker).

Knowledge base: an admin writes and publishes a new article, "try it" shows it would answer, a
customer on /chat gets its text from the bot; unpublished, it no longer answers; a bad import line is
reported and nothing is imported; the export downloads JSONL. Agents: an admin creates an agent with a
password, who then signs in and sees only the workspace. SLA: the peak switch persists; an edited
target is refused when inconsistent, saved (and served by GET /api/sla) when not, and reset.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import chromium, console_page, require_browser, screenshot_path
from tests_helpers import serve_live

from gateway.config import Settings
from knowledge_index.embedder import Embedder

require_browser()

ARTICLE_ID = "trade-in"
TITLE = "以旧换新怎么参加？"
ANSWER = ("亲，汇流小铺以旧换新：在订单页点「以旧换新」预约上门回收，旧机估价最高可抵扣800元，"
          "回收款在新品签收后3天内退回原支付账户。")
ALTERNATES = ["旧家电可以抵钱吗", "旧手机回收能换购新品吗"]
TIMEOUT = 20_000


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


async def admin_page(browser: Any, base: str, username: str, password: str, route: str) -> Any:
    """A signed-in console page opened straight on ``route`` (e.g. "#/kb"), collecting its errors.

    console_page signs in on the default route; a second page in the same context (same session
    cookie) opens the route directly, so its ``errors`` hold only what this test's pages did (not the
    signed-out GET /api/session 401 before the sign-in, nor another view loading)."""
    login = await console_page(browser, base, username, password)
    page = await login.context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.errors = errors
    page.on("dialog", _accept_dialogs)
    await page.goto(f"{base}/console/{route}")
    await page.wait_for_selector("header.topbar", timeout=TIMEOUT)
    await login.close()
    return page


async def _accept_dialogs(dialog: Any) -> None:
    await dialog.accept()  # window.confirm before delete / unpublish-all / token rotation / peak switch


def _unexpected(errors: list[str]) -> list[str]:
    # Chromium logs every 4xx fetch as a console error; the 400 of the bad import is the point of that step.
    return [e for e in errors if "the server responded with a status of 400" not in e]


async def _wait_try(page: Any, article_id: str, *, answers: bool) -> None:
    """Wait until the try-it box finished its newest search and it does (not) answer with article_id.

    The predicate is a function, not an expression: the console's CSP forbids eval, which Playwright
    would use for a string expression."""
    await page.wait_for_function(
        """([id, answers]) => {
          const r = document.querySelector('#kb-try-result');
          return !!r && r.dataset.state === 'done' && (r.dataset.answer === id) === answers;
        }""", arg=[article_id, answers], timeout=TIMEOUT)


async def test_admin_writes_an_article_the_bot_answers_with(
        settings: Settings, embedder: Embedder, redis: Any, browser: Any, tmp_path: Path) -> None:
    async with serve_live(settings, embedder) as (rt, client):
        base = str(client.make_url("")).rstrip("/")
        page = await admin_page(browser, base, "admin", settings.admin_token, "#/kb")
        await page.locator("#kb-articles tr.kb-row").nth(40).wait_for(timeout=TIMEOUT)  # the demo KB

        # A new article, published straight from the form.
        await page.click("#kb-new")
        await page.fill("#kb-id", ARTICLE_ID)
        await page.fill("#kb-title", TITLE)
        await page.fill("#kb-answer", ANSWER)
        await page.fill("#kb-questions", "\n".join(ALTERNATES))
        await page.fill("#kb-tags", "trade-in, 以旧换新")
        await page.click("#kb-publish")
        await page.locator(f"#kb-editor[data-article-id='{ARTICLE_ID}'] #kb-unpublish").wait_for(timeout=TIMEOUT)
        row = page.locator(f"tr.kb-row[data-article-id='{ARTICLE_ID}']")
        assert await row.locator(".kb-status").get_attribute("data-status") == "published"
        stored = await rt.services.kb.store.get(ARTICLE_ID)
        assert stored is not None and stored.questions == tuple(ALTERNATES) and stored.answer == ANSWER

        # Try it: the bot would answer with the new article; its score clears the threshold.
        await page.fill("#kb-try-input", "怎么参加以旧换新活动")
        await page.click("#kb-try-go")
        await _wait_try(page, ARTICLE_ID, answers=True)
        result = page.locator("#kb-try-result")
        assert await result.get_attribute("data-verdict") == "answer"
        verdict = await page.inner_text("#kb-try-verdict")
        assert "机器人会回答" in verdict and TITLE in verdict and "阈值" in verdict
        hit = page.locator(f".kb-hit[data-article-id='{ARTICLE_ID}']")
        assert "kb-hit-answer" in (await hit.get_attribute("class") or "")
        score = float(await hit.locator(".kb-score").inner_text())
        threshold = rt.services.kb.retriever.threshold
        assert score >= threshold
        assert ANSWER in await result.locator(".kb-reply").inner_text()

        # Clicking a hit opens that article; the try-it result stays (re-run against the index).
        other = await page.locator(".kb-hit").nth(1).get_attribute("data-article-id")
        await page.locator(".kb-hit").nth(1).click()
        await page.locator(f"#kb-editor[data-article-id='{other}']").wait_for(timeout=TIMEOUT)
        await _wait_try(page, ARTICLE_ID, answers=True)
        await page.click(f".kb-hit[data-article-id='{ARTICLE_ID}']")
        await page.locator(f"#kb-editor[data-article-id='{ARTICLE_ID}']").wait_for(timeout=TIMEOUT)
        await _wait_try(page, ARTICLE_ID, answers=True)
        assert await page.input_value("#kb-title") == TITLE
        await page.evaluate("() => document.querySelectorAll('.toast').forEach(t => t.remove())")
        await page.screenshot(path=screenshot_path("console-kb.png"))

        # A customer asks one of the alternate phrasings on the web chat: the bot answers with the article.
        customer = await browser.new_page(viewport={"width": 480, "height": 760})
        await customer.goto(f"{base}/chat")
        await customer.wait_for_function("document.querySelector('#huiliu-status').textContent === '已连接'",
                                         timeout=TIMEOUT)
        await customer.fill("#huiliu-input", ALTERNATES[0])
        await customer.click("#huiliu-send")
        reply = customer.locator(".huiliu-msg[data-author=bot] .huiliu-text").first
        await reply.wait_for(timeout=TIMEOUT)
        assert ANSWER in await reply.inner_text()
        await customer.close()

        # Unpublished, the article no longer answers (another article or a hand-over instead).
        await page.click("#kb-unpublish")
        await page.locator("#kb-publish").wait_for(timeout=TIMEOUT)
        assert await row.locator(".kb-status").get_attribute("data-status") == "draft"
        await _wait_try(page, ARTICLE_ID, answers=False)
        assert await page.locator(f".kb-hit[data-article-id='{ARTICLE_ID}']").count() == 0

        # An import with a bad line reports that line and imports nothing (not even the good line).
        bad = (json.dumps({"id": "import-ok", "title": "导入测试", "answer": "好的"}, ensure_ascii=False)
               + "\n{not json\n").encode()
        await page.set_input_files("#kb-import-file", files=[
            {"name": "bad.jsonl", "mimeType": "application/x-ndjson", "buffer": bad}])
        await page.click("#kb-import-go")
        await page.locator("#kb-import-result[data-outcome=error] li[data-line='2']").wait_for(timeout=TIMEOUT)
        assert "第 2 行" in await page.inner_text("#kb-import-result")
        assert await rt.services.kb.store.get("import-ok") is None
        assert await page.locator("tr.kb-row[data-article-id='import-ok']").count() == 0

        # The export downloads every article as JSONL, the new (now draft) one included.
        async with page.expect_download(timeout=TIMEOUT) as info:
            await page.click("#kb-export")
        download = await info.value
        target = tmp_path / "export.jsonl"
        await download.save_as(target)
        exported = {a["id"]: a for a in map(json.loads, target.read_text(encoding="utf-8").splitlines())}
        assert exported[ARTICLE_ID]["title"] == TITLE and exported[ARTICLE_ID]["status"] == "draft"
        assert exported[ARTICLE_ID]["questions"] == ALTERNATES
        assert len(exported) >= 44

        # Delete (after a confirm) takes the article out of the list and the database.
        await page.click("#kb-delete")
        await page.locator("#kb-editor.kb-editor-empty").wait_for(timeout=TIMEOUT)
        assert await row.count() == 0
        assert await rt.services.kb.store.get(ARTICLE_ID) is None

        # "New article" from an open article (#/kb/<id>) lands on an empty form at #/kb.
        await page.locator("tr.kb-row").first.click()
        await page.locator("#kb-editor[data-article-id]:not([data-article-id='']) #kb-delete").wait_for(timeout=TIMEOUT)
        await page.click("#kb-new")
        await page.locator("#kb-editor[data-article-id=''] #kb-title").wait_for(timeout=TIMEOUT)
        assert await page.input_value("#kb-title") == "" and page.url.endswith("#/kb")

        assert _unexpected(page.errors) == []
        await page.context.close()


async def test_admin_manages_agents_and_the_peak_switch(
        settings: Settings, embedder: Embedder, redis: Any, browser: Any) -> None:
    async with serve_live(settings, embedder) as (rt, client):
        base = str(client.make_url("")).rstrip("/")
        page = await admin_page(browser, base, "admin", settings.admin_token, "#/admin/agents")
        await page.locator("#adm-skills h2").wait_for(timeout=TIMEOUT)

        # Create an agent with skills and a console password; the API token is shown once.
        await page.click("#adm-agent-new")
        await page.fill("#adm-agent-id", "xiaomei")
        await page.fill("#adm-agent-name", "小美")
        await page.select_option("#adm-agent-role", "agent")
        await page.fill("#adm-agent-team", "售后组")
        await page.fill("#adm-agent-skills", "Returns, lang:en")
        await page.fill("#adm-agent-max", "3")
        await page.fill("#adm-agent-password", "xiaomei-pass-1")
        await page.click("#adm-agent-save")
        await page.locator("#adm-token-box[data-agent-id=xiaomei]").wait_for(timeout=TIMEOUT)
        first_token = await page.input_value("#adm-token-value")
        assert first_token and await rt.services.agents.authenticate(first_token) is not None
        row = page.locator("tr.adm-agent[data-agent-id=xiaomei]")
        await row.wait_for(timeout=TIMEOUT)
        assert sorted(await row.locator(".adm-chip").all_inner_texts()) == ["lang:en", "returns"]
        assert await page.locator("#adm-skills .adm-chip[data-skill=returns]").count() == 1

        # Edit: one more skill and a higher cap (PATCH).
        await row.locator(".adm-edit").click()
        await page.fill("#adm-edit-skills", "returns, lang:en, vip")
        await page.fill("#adm-edit-max", "4")
        await page.click("#adm-edit-save")
        await row.locator(".adm-chip[data-skill=vip]").wait_for(timeout=TIMEOUT)
        agent = await rt.services.agents.get("xiaomei")
        assert agent is not None and agent.max_concurrent == 4 and agent.skills == {"returns", "lang:en", "vip"}

        # Rotating the token shows a new one; the old one stops working.
        await row.locator(".adm-rotate").click()
        await page.wait_for_function(
            "old => { const box = document.querySelector('#adm-token-value'); return !!box && box.value !== old; }",
            arg=first_token, timeout=TIMEOUT)
        assert await rt.services.agents.authenticate(first_token) is None

        # The new agent signs in with the password: workspace yes, admin pages no.
        agent_page = await console_page(browser, base, "xiaomei", "xiaomei-pass-1")
        links = agent_page.locator("header.topbar a.nav-link")
        routes = await links.evaluate_all("els => els.map(e => e.dataset.route)")
        assert "workspace" in routes and "kb" not in routes and "admin/agents" not in routes
        await agent_page.context.close()

        # The peak-season switch: confirm, flip, and it is what the API reports afterwards.
        await page.click("a.nav-link[data-route='admin/sla']")
        await page.locator("#adm-sla-peak[data-profile=standard]").wait_for(timeout=TIMEOUT)
        p0 = page.locator("#adm-sla-table tr[data-priority=P0]")
        assert await p0.locator("td[data-clock=first_response_s][data-profile=standard]").inner_text() == "10 分钟"
        assert await p0.locator("td[data-clock=first_response_s][data-profile=peak]").inner_text() == "20 分钟"
        await page.click("#adm-sla-peak")
        await page.locator("#adm-sla-peak[data-profile=peak]").wait_for(timeout=TIMEOUT)
        resp = await client.get("/api/sla", headers={"Authorization": f"Bearer {settings.admin_token}"})
        sla = await resp.json()
        assert sla["profile"] == "peak" and sla["targets"]["P0"]["first_response_s"] == 1200
        # The page shows the same numbers in peak mode (the server now sends the peak targets).
        assert await p0.locator("td[data-clock=first_response_s][data-profile=standard]").inner_text() == "10 分钟"

        # Editing the policy: the note says it is for new tickets; the inputs start from the targets in
        # force (minutes, or hours for whole hours).
        assert "新建的工单" in await page.inner_text("#adm-sla-note")
        assert await page.input_value("#adm-sla-in-P0-first_response_s") == "10"
        assert await page.input_value("#adm-sla-in-P0-first_response_s-unit") == "60"
        assert await page.input_value("#adm-sla-in-P0-resolution_s") == "4"
        assert await page.input_value("#adm-sla-in-P0-resolution_s-unit") == "3600"
        # A first response longer than the resolution is refused by the server, the input pointed at.
        await page.select_option("#adm-sla-in-P0-first_response_s-unit", "3600")
        assert await page.input_value("#adm-sla-in-P0-first_response_s") == "0.17"  # 10 min in hours
        await page.fill("#adm-sla-in-P0-first_response_s", "5")
        await page.click("#adm-sla-save")
        await page.locator("#adm-sla-in-P0-first_response_s.adm-invalid").wait_for(timeout=TIMEOUT)
        assert "首次响应" in await page.inner_text("#adm-sla-error")
        # Switching the unit keeps the duration: 5 h is 300 min; then the edit that is allowed.
        await page.select_option("#adm-sla-in-P0-first_response_s-unit", "60")
        assert await page.input_value("#adm-sla-in-P0-first_response_s") == "300"
        await page.fill("#adm-sla-in-P0-first_response_s", "15")
        # Only a unit switched (10 min shows as 0.17 h): not a change, P0's next response stays 600 s.
        await page.select_option("#adm-sla-in-P0-next_response_s-unit", "3600")
        await page.click("#adm-sla-save")
        await page.locator("#adm-sla-meta[data-customized=true]").wait_for(timeout=TIMEOUT)
        assert await p0.locator("td[data-clock=first_response_s][data-profile=standard]").inner_text() == "15 分钟"
        assert await p0.locator("td[data-clock=first_response_s][data-profile=peak]").inner_text() == "30 分钟"
        resp = await client.get("/api/sla", headers={"Authorization": f"Bearer {settings.admin_token}"})
        sla = await resp.json()
        assert sla["customized"] is True and sla["updated_by"] == "admin"
        assert sla["standard"]["P0"] == {"first_response_s": 900, "next_response_s": 600, "resolution_s": 14_400}
        assert sla["targets"]["P0"]["first_response_s"] == 1800  # still in peak mode: 15 min × 2
        await page.screenshot(path="/tmp/console-sla.png", full_page=True)

        # Reset to defaults: the built-in targets again.
        await page.click("#adm-sla-reset")
        await page.locator("#adm-sla-meta[data-customized=false]").wait_for(timeout=TIMEOUT)
        assert await page.input_value("#adm-sla-in-P0-first_response_s") == "10"
        resp = await client.get("/api/sla", headers={"Authorization": f"Bearer {settings.admin_token}"})
        assert (await resp.json())["standard"]["P0"]["first_response_s"] == 600

        assert _unexpected(page.errors) == []  # the refused save's 400 is expected
        await page.context.close()
