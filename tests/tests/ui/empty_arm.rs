use bandits::flag_variant;
use rocket::get;

#[flag_variant("checkout-flow", arm = "")]
#[get("/checkout")]
fn checkout() -> &'static str {
    "one-page"
}

fn main() {}
