//! The `#[flag_variant]` attribute of rocket-bandits: one Rocket handler per arm of a flag.
//!
//! Put it **above** the route attribute of a handler. The handler then serves only the
//! visitors whose arm of the flag is the one named; every other visitor falls through to
//! the next handler of the same method and path, usually a plain one serving the rest:
//!
//! ```ignore
//! use bandits::flag_variant;
//! use rocket::get;
//!
//! /// Visitors on the `one-page` arm of `checkout-flow`.
//! #[flag_variant("checkout-flow", arm = "one-page")]
//! #[get("/checkout")]
//! fn checkout_one_page() -> &'static str {
//!     "One page: address, card, done."
//! }
//!
//! /// Everyone else: the control arm, visitors outside the experiment, unknown flag.
//! #[get("/checkout")]
//! fn checkout_classic() -> &'static str {
//!     "Step 1 of 3: your address."
//! }
//!
//! // rocket::build().mount("/", routes![checkout_one_page, checkout_classic])
//! ```
//!
//! The attribute adds a request guard, first among the handler's parameters, that asks the
//! visitor's arm (assigning one by the flag's policy if they have none, exactly as the
//! `Flags` guard and the templates do) and forwards when it is another arm. Unless the
//! route sets `rank` itself, the route is ranked ahead of the default rank a plain
//! handler of the same path gets (by 1 to 10,000, fixed by the flag and arm names), so the
//! split handler is tried before its plain sibling; several arms of one flag on one path
//! each get their own rank (in the rare case two collide, Rocket refuses to launch naming
//! both routes, and a `rank` on one of them settles it). Mount it as usual with
//! `routes![...]`; `uri!` does not know split handlers.
//!
//! Works under `#[get]`, `#[post]`, `#[put]`, `#[delete]`, `#[patch]`, `#[head]`,
//! `#[options]` and `#[route]`, beside any other guards and data. Mistakes are compile
//! errors pointing at the offending token: a missing or malformed flag name, a key other
//! than `arm`, an empty or malformed arm, the attribute on something that is not a function,
//! or below the route attribute.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, ItemFn, LitStr, Meta, Token};

/// The route attributes the split works under.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "route",
];

/// Serves a Rocket handler only to visitors on one arm of a flag. See the crate docs.
#[proc_macro_attribute]
pub fn flag_variant(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // The item stays as written, so the error is the only one reported.
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item).into()
        }
    }
}

struct Args {
    flag: LitStr,
    arm: LitStr,
}

/// Flag and arm names: 1 to 100 of `a-z`, `0-9`, `-`, `_`, as the engine requires.
fn check_name(lit: &LitStr, what: &str) -> syn::Result<()> {
    let value = lit.value();
    if value.is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("the {what} must not be empty"),
        ));
    }
    if value.len() > 100
        || !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "the {what} {value:?} is not a valid name: 1 to 100 lowercase letters, digits, \
                 '-' and '_'"
            ),
        ));
    }
    Ok(())
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const USAGE: &str =
            "expected the flag's name first: #[flag_variant(\"checkout-flow\", arm = \"on\")]";
        if input.is_empty() {
            return Err(syn::Error::new(Span::call_site(), USAGE));
        }
        let flag: LitStr = input
            .parse()
            .map_err(|error| syn::Error::new(error.span(), USAGE))?;
        check_name(&flag, "flag name")?;
        let mut arm: Option<LitStr> = None;
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            if key != "arm" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown key `{key}`: #[flag_variant] takes the flag's name and `arm = \"...\"`"),
                ));
            }
            if arm.is_some() {
                return Err(syn::Error::new(key.span(), "`arm` is given twice"));
            }
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            check_name(&value, "arm name")?;
            arm = Some(value);
        }
        let arm = arm.ok_or_else(|| {
            syn::Error::new(
                flag.span(),
                "missing `arm = \"...\"`: which arm of the flag does this handler serve?",
            )
        })?;
        Ok(Args { flag, arm })
    }
}

/// The route attribute among `attrs`, if any.
fn route_attribute(attrs: &mut [Attribute]) -> Option<&mut Attribute> {
    attrs.iter_mut().find(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|segment| METHODS.iter().any(|m| segment.ident == m))
    })
}

/// Whether the route attribute's arguments set `rank` at their top level.
fn sets_rank(tokens: &TokenStream2) -> bool {
    let mut previous_was_rank = false;
    for token in tokens.clone() {
        match &token {
            TokenTree::Punct(punct) if punct.as_char() == '=' && previous_was_rank => return true,
            TokenTree::Ident(ident) => previous_was_rank = ident == "rank",
            _ => previous_was_rank = false,
        }
    }
    false
}

/// How far ahead of the default rank the split handler goes: 0 to 9,999, fixed by the
/// names, so several arms of one flag on one path get different ranks.
fn rank_offset(flag: &str, arm: &str) -> isize {
    // FNV-1a: stable across compilers, so the rank does not change between builds.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in flag.bytes().chain([0xff]).chain(arm.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % 10_000) as isize
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args: Args = syn::parse2(attr)?;
    let mut function: ItemFn = syn::parse2(item.clone()).map_err(|_| {
        let span = item
            .clone()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |token| token.span());
        syn::Error::new(
            span,
            "#[flag_variant] applies to a Rocket handler function (a `fn` with #[get], #[post], ...)",
        )
    })?;
    let name = function.sig.ident.clone();
    let Some(route) = route_attribute(&mut function.attrs) else {
        return Err(syn::Error::new(
            name.span(),
            "put #[flag_variant] above the route attribute (#[get(...)], #[post(...)], ...): \
             it must see the route to rank it",
        ));
    };
    let explicit_rank = match &route.meta {
        Meta::List(list) => sets_rank(&list.tokens),
        _ => false,
    };
    // Rocket's attribute takes only literal, non-negative ranks, and the handler must come
    // before its sibling's default (negative) rank. So Rocket generates the route under a
    // hidden name, and the handler's own name gets a route struct whose `into_route`
    // (what `routes!` calls) adjusts the rank of Rocket's route.
    let hidden = format_ident!("__bandits_variant_{}", name);
    function.sig.ident = hidden.clone();
    let marker = format_ident!("__BanditsArmOf_{}", name);
    let (flag, arm) = (&args.flag, &args.arm);
    let guard: syn::FnArg = syn::parse2(quote_spanned! {name.span()=>
        __bandits_arm: ::bandits::guard::OnArm<#marker>
    })?;
    function.sig.inputs.insert(0, guard);
    let offset = rank_offset(&flag.value(), &arm.value());
    let rerank = if explicit_rank {
        quote!()
    } else {
        quote! {
            // Ahead of the default rank a plain sibling of the same path gets.
            route.rank = route.rank - 1 - #offset;
        }
    };
    let vis = &function.vis;
    let name_str = name.to_string();
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #marker;

        impl ::bandits::guard::ArmOf for #marker {
            const FLAG: &'static str = #flag;
            const ARM: &'static str = #arm;
        }

        #function

        #[doc(hidden)]
        #[allow(nonstandard_style)]
        #vis struct #name {}

        #[allow(nonstandard_style, clippy::style)]
        impl #name {
            #[doc(hidden)]
            pub fn into_route(self) -> ::rocket::Route {
                let mut route = #hidden {}.into_route();
                route.name = ::std::option::Option::Some(::std::borrow::Cow::Borrowed(#name_str));
                #rerank
                route
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_offsets_are_stable_and_differ_between_arms() {
        let offset = rank_offset("checkout-flow", "one-page");
        assert!((0..10_000).contains(&offset));
        assert_eq!(offset, rank_offset("checkout-flow", "one-page"));
        assert_ne!(offset, rank_offset("checkout-flow", "classic"));
    }

    #[test]
    fn an_explicit_rank_is_kept() {
        assert!(sets_rank(&quote!("/x", rank = 3)));
        assert!(!sets_rank(&quote!("/rank", format = "json")));
    }

    #[test]
    fn the_guard_goes_first_and_the_rank_is_added() {
        let out = expand(
            quote!("checkout-flow", arm = "one-page"),
            quote! {
                #[get("/checkout")]
                fn checkout(user: User) -> &'static str { "x" }
            },
        )
        .expect("expands")
        .to_string();
        assert!(out.contains("route . rank = route . rank - 1 -"), "{out}");
        let guard = out.find("__bandits_arm").expect("the guard");
        let user = out.find("user : User").expect("the site's guard");
        assert!(guard < user, "{out}");
    }
}
