use bandits::flag_variant;

#[flag_variant("checkout-flow", arm = "on")]
struct Checkout;

fn main() {}
