use bandits::flag_variant;
use rocket::get;

#[get("/checkout")]
#[flag_variant("checkout-flow", arm = "on")]
fn checkout() -> &'static str {
    "one-page"
}

fn main() {}
