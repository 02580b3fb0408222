//! The console's files, compiled into the binary: nothing to install beside it.

/// The file named `name`: its content type and text.
pub fn find(name: &str) -> Option<(&'static str, &'static str)> {
    let found = match name {
        "admin.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/admin.js"),
        ),
        "api.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/api.js"),
        ),
        "app.css" => ("text/css; charset=utf-8", include_str!("assets/app.css")),
        "app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/app.js"),
        ),
        "chart.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/chart.js"),
        ),
        "d365.svg" => ("image/svg+xml", include_str!("assets/d365.svg")),
        "details.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/details.js"),
        ),
        "dom.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/dom.js"),
        ),
        "format.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/format.js"),
        ),
        "index.html" => (
            "text/html; charset=utf-8",
            include_str!("assets/index.html"),
        ),
        "kinds.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/kinds.js"),
        ),
        "keyresults.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/keyresults.js"),
        ),
        "krform.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/krform.js"),
        ),
        "progress.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/progress.js"),
        ),
        "signin.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/signin.js"),
        ),
        "wizard.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/wizard.js"),
        ),
        _ => return None,
    };
    Some(found)
}
