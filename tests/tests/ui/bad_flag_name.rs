use bandits::flag_variant;
use rocket::get;

#[flag_variant("Checkout Flow", arm = "on")]
#[get("/checkout")]
fn checkout() -> &'static str {
    "one-page"
}

fn main() {}
