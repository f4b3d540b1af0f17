//! The duty console in a real browser (headless Chromium through chromedriver), as the people
//! on shift use it at 3 a.m.: sign in, look a child up, take a phone enquiry and call back,
//! see when the register is stale, get locked out after wrong passwords. Every page visited is
//! checked for labels and focus order, and screenshots land in `target/console-screenshots/`.

#[path = "console/accessibility.rs"]
mod accessibility;
#[path = "console/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;

use cpreg_replica::store::{EnquiryPath, EnquiryState};
use cpreg_tests::TestPrimary;
use cpreg_tests::replica::{TestReplica, console_config};
use cpreg_tests::site::{DEMO_EDT, GP_OUT_OF_HOURS, ST_ELSEWHERE_AE, lookup_site};
use webdriver::{Browser, TAB};

const OPERATOR: &str = "duty";
const PASSWORD: &str = "night shift 0300 kettle";

/// Where the screenshots go: `target/console-screenshots/`.
fn screenshots() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("console-screenshots")
}

/// A primary with Amelia Evans on a plan and the directory; a replica at `site` whose console
/// makes its lookups for `organisation`, with the operator `duty`.
async fn site(site: &str, organisation: &str) -> (TestPrimary, TestReplica, String) {
    cpreg_replica::install_crypto_provider();
    let role = if site == "ae" {
        "ED registrar"
    } else {
        "EDT duty worker"
    };
    let (primary, replica) = lookup_site(
        site,
        &[ST_ELSEWHERE_AE, DEMO_EDT, GP_OUT_OF_HOURS],
        |pki, config| {
            config.console = Some(console_config(pki, site, organisation));
            cpreg_replica::console::operators::add(
                &config.operators_path(),
                OPERATOR,
                role,
                PASSWORD,
                false,
                cpreg_tests::now(),
            )
            .expect("operator");
        },
    )
    .await;
    let addr = replica.replica.console_addr().expect("console served");
    let url = format!("https://127.0.0.1:{}", addr.port());
    (primary, replica, url)
}

/// Checks the page shown now for labels, headings and tabindex, naming what is wrong.
async fn accessible(browser: &Browser, page: &str) {
    let problems = accessibility::problems(&browser.source().await);
    assert!(problems.is_empty(), "{page}: {problems:#?}");
}

async fn sign_in(browser: &Browser, url: &str, password: &str) {
    browser.goto(&format!("{url}/")).await;
    browser.fill("#f-username", OPERATOR).await;
    browser.fill("#f-password", password).await;
    browser.submit("button[type=submit]").await;
}

/// Fills the child's details on the lookup or phone form.
async fn child(browser: &Browser, given: &str, surname: &str, dob: &str) {
    browser.fill("#f-given_names", given).await;
    browser.fill("#f-surname", surname).await;
    browser.fill("#f-date_of_birth", dob).await;
}

async fn look_up(browser: &Browser, url: &str, given: &str, surname: &str, dob: &str) {
    browser.goto(&format!("{url}/lookup")).await;
    child(browser, given, surname, dob).await;
    browser
        .fill("#f-reason", "Unexplained bruising on a toddler")
        .await;
    browser.submit("main button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_and_finds_a_child_by_exact_details_and_despite_a_typo() {
    let (_primary, replica, url) = site("ae", "st-elsewhere-ae").await;
    let browser = Browser::start().await;
    let shots = screenshots();

    browser.goto(&format!("{url}/lookup")).await;
    assert!(
        browser.url().await.ends_with("/signin"),
        "signed out, the console asks for a sign-in first"
    );
    accessible(&browser, "sign-in").await;
    browser.screenshot(&shots, "01-sign-in").await;
    sign_in(&browser, &url, PASSWORD).await;
    assert!(browser.url().await.ends_with("/lookup"));
    assert!(browser.text("header").await.contains("Sign out duty"));
    accessible(&browser, "lookup form").await;
    browser.screenshot(&shots, "02-lookup-form").await;

    // As an A&E registrar types it: the date the English way.
    look_up(&browser, &url, "Amelia", "Evans", "23/04/2019").await;
    assert_eq!(
        browser.text("#outcome").await,
        "Child Protection Plan found"
    );
    let ring = browser.text("main .ring").await;
    assert!(
        ring.contains("Sam Okafor") && ring.contains("02079460123"),
        "{ring}"
    );
    assert!(browser.text("#advice").await.contains("Sam Okafor"));
    accessible(&browser, "answer").await;
    browser.screenshot(&shots, "03-answer-match").await;
    browser.resize(390, 844).await;
    browser.screenshot(&shots, "04-answer-small-screen").await;
    browser.resize(1024, 1300).await;

    // The enquiry is on record, made at the operator's own "web console (duty)" terminal.
    let reference = browser.text("#reference").await;
    let recorded = replica
        .replica
        .store()
        .enquiry(&reference)
        .expect("read")
        .expect("on record");
    match &recorded.path {
        EnquiryPath::Terminal {
            terminal,
            organisation,
            operator,
            operator_role,
        } => assert_eq!(
            (
                terminal.as_str(),
                organisation.as_str(),
                operator.as_str(),
                operator_role.as_str()
            ),
            (
                format!("web console ({OPERATOR})").as_str(),
                "st-elsewhere-ae",
                OPERATOR,
                "ED registrar"
            )
        ),
        other => panic!("recorded as {other:?}"),
    }
    assert!(matches!(recorded.state, EnquiryState::Answered { .. }));

    // A typo in the surname still finds her.
    look_up(&browser, &url, "Amelia", "Evnas", "2019-04-23").await;
    let main = browser.text("main").await;
    assert!(
        main.contains("Amelia Evans") && main.contains("Sam Okafor"),
        "{main}"
    );
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        2
    );
    browser.quit().await;
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_says_what_was_searched_and_never_that_the_child_is_safe() {
    let (_primary, replica, url) = site("ae", "st-elsewhere-ae").await;
    let browser = Browser::start().await;
    sign_in(&browser, &url, PASSWORD).await;
    look_up(&browser, &url, "Oscar", "Whitfield", "02/02/2018").await;
    assert_eq!(browser.text("#outcome").await, "No record found");
    let advice = browser.text("#advice").await;
    assert!(
        advice.contains("Oscar Whitfield, born 2018-02-02"),
        "{advice}"
    );
    assert!(
        advice.contains("does not mean the child is safe"),
        "{advice}"
    );
    accessible(&browser, "no record").await;
    browser.screenshot(&screenshots(), "05-no-record").await;
    browser.quit().await;
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_with_too_little_detail_is_refused_saying_what_to_add() {
    let (_primary, replica, url) = site("ae", "st-elsewhere-ae").await;
    let browser = Browser::start().await;
    sign_in(&browser, &url, PASSWORD).await;
    look_up(&browser, &url, "Amelia", "Evans", "").await;
    let problem = browser.text("#problem").await;
    assert!(
        problem.contains("The lookup was not made") && problem.contains("date of birth"),
        "{problem}"
    );
    assert!(
        problem.contains("recorded"),
        "the refusal is on record: {problem}"
    );
    // What was typed is kept, so only the missing detail needs adding.
    assert!(browser.source().await.contains("value=\"Evans\""));
    accessible(&browser, "refusal").await;
    browser.screenshot(&screenshots(), "06-refused").await;
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        1
    );
    browser.quit().await;
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_enquiry_is_answered_only_after_the_directory_number_is_rung_back() {
    let (_primary, replica, url) = site("edt", "demo-edt").await;
    let browser = Browser::start().await;
    let shots = screenshots();
    sign_in(&browser, &url, PASSWORD).await;

    let take_call = async |number_given: &str| {
        browser.goto(&format!("{url}/phone")).await;
        browser.fill("#f-enquirer_name", "Dr Lee").await;
        browser.fill("#f-enquirer_role", "GP").await;
        browser
            .click("#f-organisation_id option[value=gp-ooh]")
            .await;
        browser.fill("#f-number_given", number_given).await;
        child(&browser, "Amelia", "Evans", "23/04/2019").await;
        browser.fill("#f-reason", "Child seen with burns").await;
    };
    take_call("07700 900123").await;
    accessible(&browser, "phone enquiry").await;
    browser.screenshot(&shots, "07-phone-enquiry").await;
    browser.submit("main button[type=submit]").await;

    // Step two: the directory's number, never the caller's, and nothing about the child yet.
    assert!(
        browser.url().await.contains("/phone/EDT-"),
        "{}",
        browser.url().await
    );
    assert_eq!(browser.text("#callback-number").await, "01632960400");
    let main = browser.text("main").await;
    assert!(
        main.contains("Do not ring the number the caller gave (07700 900123)"),
        "{main}"
    );
    assert!(
        !main.contains("Sam Okafor"),
        "nothing released before the call-back"
    );
    accessible(&browser, "call-back ticket").await;
    browser.screenshot(&shots, "08-call-back").await;
    let reference = browser.text("#reference").await;
    browser.click("#outcome-confirmed").await;
    browser.submit("main button[type=submit]").await;
    assert_eq!(
        browser.text("#outcome").await,
        "Child Protection Plan found"
    );
    assert_eq!(browser.text("#reference").await, reference);
    assert!(browser.text("main .ring").await.contains("Sam Okafor"));
    browser.screenshot(&shots, "09-call-back-answer").await;
    let recorded = replica
        .replica
        .store()
        .enquiry(&reference)
        .expect("read")
        .expect("on record");
    assert!(
        matches!(&recorded.path, EnquiryPath::Callback { duty_worker, callback_number, .. }
            if duty_worker == OPERATOR && callback_number == "01632960400"),
        "{:?}",
        recorded.path
    );

    // A caller who cannot be confirmed gets nothing, and that is on record too.
    take_call("07700 900999").await;
    browser.submit("main button[type=submit]").await;
    let reference = browser.text("#reference").await;
    browser.click("#outcome-not-confirmed").await;
    browser.submit("main button[type=submit]").await;
    let problem = browser.text("#problem").await;
    assert!(
        problem.contains("Nothing about the child was released"),
        "{problem}"
    );
    assert!(!browser.text("main").await.contains("Sam Okafor"));
    let recorded = replica
        .replica
        .store()
        .enquiry(&reference)
        .expect("read")
        .expect("on record");
    assert!(matches!(
        recorded.state,
        EnquiryState::CallbackFailed { .. }
    ));
    browser.quit().await;
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banner_warns_once_the_primary_has_been_gone_past_the_threshold() {
    let (primary, replica, url) = site("ae", "st-elsewhere-ae").await;
    let browser = Browser::start().await;
    sign_in(&browser, &url, PASSWORD).await;
    let banner = browser.text("#register-banner").await;
    assert!(
        banner.starts_with("Register as of 12:00 on 22 November 2026"),
        "{banner}"
    );

    let _pki = primary.stop().await;
    replica.clock.advance(chrono::Duration::hours(25));
    browser.goto(&format!("{url}/status")).await;
    let banner = browser.text("#register-banner").await;
    assert!(
        banner.contains("Warning: the register here may be out of date")
            && banner.contains("more than 24 hours ago"),
        "{banner}"
    );
    assert!(browser.text("main table").await.contains("stale"));
    accessible(&browser, "status").await;
    browser.screenshot(&screenshots(), "10-status-stale").await;

    // The answer itself carries the warning too.
    look_up(&browser, &url, "Amelia", "Evans", "2019-04-23").await;
    assert!(
        browser
            .text("main")
            .await
            .contains("may be out of date: confirm this answer")
    );
    browser.screenshot(&screenshots(), "11-answer-stale").await;
    browser.quit().await;
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_lock_the_account_even_against_the_right_one() {
    let (_primary, replica, url) = site("ae", "st-elsewhere-ae").await;
    let browser = Browser::start().await;
    for left in (1..=4).rev() {
        sign_in(&browser, &url, "not the password").await;
        let problem = browser.text("#problem").await;
        assert!(
            problem.contains(&format!("{left} more failed attempt(s)")),
            "{problem}"
        );
    }
    sign_in(&browser, &url, "still not it").await;
    assert!(
        browser
            .text("#problem")
            .await
            .contains("locked for 15 minutes")
    );
    sign_in(&browser, &url, PASSWORD).await;
    let problem = browser.text("#problem").await;
    assert!(
        problem.contains("Too many failed sign-ins") && problem.contains("locked"),
        "{problem}"
    );
    assert!(browser.url().await.ends_with("/signin"), "not signed in");
    browser.screenshot(&screenshots(), "12-locked-out").await;
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        0
    );
    browser.quit().await;
    replica.replica.stop().await;
}

/// Walks the page with Tab from wherever the focus is, checking each step lands on the next
/// focusable element in the page's order.
async fn tab_follows_page_order(browser: &Browser, page: &str) {
    let count = browser
        .script(
            "const els = Array.from(document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea'));\
             els.forEach((e, i) => e.setAttribute('data-order', i));\
             return els.length;",
        )
        .await
        .as_i64()
        .expect("a count");
    let active = async || {
        browser
            .script("const o = document.activeElement.getAttribute('data-order'); return o === null ? -1 : Number(o);")
            .await
            .as_i64()
            .unwrap_or(-1)
    };
    let mut at = active().await;
    while at + 1 < count {
        browser.press(TAB).await;
        let next = active().await;
        assert_eq!(next, at + 1, "{page}: Tab went from element {at} to {next}");
        at = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_follows_each_page_in_order_and_forms_need_their_token() {
    let (_primary, replica, url) = site("ae", "st-elsewhere-ae").await;
    let browser = Browser::start().await;
    browser.goto(&format!("{url}/signin")).await;
    tab_follows_page_order(&browser, "sign-in").await;
    sign_in(&browser, &url, PASSWORD).await;
    tab_follows_page_order(&browser, "lookup form").await;
    browser.goto(&format!("{url}/status")).await;
    tab_follows_page_order(&browser, "status").await;
    browser.goto(&format!("{url}/phone")).await;
    tab_follows_page_order(&browser, "phone enquiry").await;

    // A form posted without the session's token is refused (here: built by script, as a
    // forged form would be), and nothing is recorded.
    browser
        .script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = '/lookup';\
             for (const [k, v] of [['given_names', 'Amelia'], ['surname', 'Evans'], ['date_of_birth', '2019-04-23'], ['reason', 'x']]) {\
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }\
             document.body.appendChild(f); f.submit(); return 0;",
        )
        .await;
    for _ in 0..50 {
        if browser.source().await.contains("The form had expired") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(browser.source().await.contains("The form had expired"));
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        0
    );
    browser.quit().await;
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_are_secure_http_only_and_same_site_strict() {
    let (primary, replica, url) = site("ae", "st-elsewhere-ae").await;
    let ca = reqwest::Certificate::from_pem(primary.pki.ca.ca_pem().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http
        .get(format!("{url}/signin"))
        .send()
        .await
        .expect("sign-in page");
    assert_eq!(
        page.headers()["cache-control"],
        "no-store",
        "pages are not kept by the browser"
    );
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("default-src 'none'")
    );
    let pre = page.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let token = pre
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("token");
    let signed_in = http
        .post(format!("{url}/signin"))
        .header("cookie", format!("__Host-cpreg_signin={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={token}&username={OPERATOR}&password=night+shift+0300+kettle"
        ))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 303);
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-cpreg_session="))
        .expect("a session cookie")
        .to_owned();
    for flag in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=900",
    ] {
        assert!(session.contains(flag), "{flag} missing: {session}");
    }
    let id = session
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("id");
    assert_eq!(id.len(), 64, "256 random bits");
    // The session without its form token changes nothing.
    let forged = http
        .post(format!("{url}/lookup"))
        .header("cookie", format!("__Host-cpreg_session={id}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("given_names=Amelia&surname=Evans&date_of_birth=2019-04-23&reason=x")
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        0
    );
    replica.replica.stop().await;
}
