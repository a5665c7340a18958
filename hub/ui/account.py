"""The account bar at the top of the page: who you are here, and how to sign in.

- auth mode `none`: a notice that every visitor acts as the local maintainer (one person, own machine);
- `token`: a token field with Sign in / Sign out (the session is bound to the token's user);
- `hf_oauth`: Gradio's "Sign in with Hugging Face" button.

`/whoami` on the API answers the caller's role and user (a visitor: role only).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from hub.errors import HubInputError
from hub.ui.common import user_error
from hub.ui.context import HubContext
from hub.ui.i18n import page_language, t, tr
from hub.ui.identity import identify, sign_in_with_token, sign_out


def status_text(ctx: HubContext, request: gr.Request) -> str:
    lang = page_language(request)
    mode = ctx.config.auth.resolved_mode
    if mode == "none":
        return tr(lang, "msg.account.open_mode")
    try:
        who = identify(ctx, request)
    except HubInputError as err:
        return user_error(err, request).message
    if who.user is None:
        return tr(lang, "msg.account.visitor")
    return tr(lang, "msg.account.signed_in", user=who.user, role=tr(lang, f"msg.account.role_{who.role}"))


def build_bar(ctx: HubContext) -> tuple[gr.Markdown, list[Any]]:
    """The bar; returns its status text and the buttons whose clicks change who the caller is."""
    mode = ctx.config.auth.resolved_mode
    changes: list[Any] = []
    with gr.Row(equal_height=True, elem_id="account-bar"):
        status = gr.Markdown(elem_id="account-status")
        if mode == "token":
            token = gr.Textbox(show_label=False, placeholder=t("ui.account.token"), type="password", max_lines=1, scale=2,
                               elem_id="account-token", container=False)
            sign_in = gr.Button(t("ui.account.sign_in"), size="sm", scale=0, min_width=110, elem_id="account-sign-in")
            sign_out_button = gr.Button(t("ui.account.sign_out"), size="sm", scale=0, min_width=110, elem_id="account-sign-out")

            def on_sign_in(value: str, request: gr.Request) -> tuple[str, str]:
                try:
                    sign_in_with_token(ctx, request, value)
                except HubInputError as err:
                    raise user_error(err, request) from None
                return status_text(ctx, request), ""

            def on_sign_out(request: gr.Request) -> str:
                sign_out(ctx, request)
                return status_text(ctx, request)

            # Queued: an error reaches the page as a toast only through the queue.
            changes.append(sign_in.click(on_sign_in, [token], [status, token], api_visibility="private", concurrency_limit=None))
            changes.append(sign_out_button.click(on_sign_out, None, [status], api_visibility="private", concurrency_limit=None))
        elif mode == "hf_oauth":
            gr.LoginButton(size="sm", scale=0, min_width=220, elem_id="account-login")

    def whoami(request: gr.Request) -> dict[str, Any]:
        """The caller's role on this hub (visitor, user or maintainer) and, when signed in, who."""
        try:
            who = identify(ctx, request)
        except HubInputError as err:
            raise user_error(err, request) from None
        return {"role": who.role, "user": who.user, "auth_mode": mode}

    gr.api(whoami, api_name="whoami", concurrency_limit=None)
    return status, changes
