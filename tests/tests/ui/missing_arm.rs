use bandits::flag_variant;
use rocket::get;

#[flag_variant("checkout-flow")]
#[get("/checkout")]
fn checkout() -> &'static str {
    "one-page"
}

fn main() {}
