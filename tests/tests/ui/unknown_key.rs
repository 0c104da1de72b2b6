use bandits::flag_variant;
use rocket::get;

#[flag_variant("checkout-flow", colour = "on")]
#[get("/checkout")]
fn checkout() -> &'static str {
    "one-page"
}

fn main() {}
