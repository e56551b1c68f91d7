//! `#[derive(Explain)]`: implements `explain::Explain` from a type's definition — its
//! fields and variants with their doc comments, their Rust types, and the defaults
//! serde's attributes give them (`default`, `default = "path"`, a container's
//! `default`), under serde's names (`rename`), leaving out what serde skips.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitStr, Type, parse_macro_input};

#[proc_macro_derive(Explain)]
pub fn derive_explain(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let written = name.to_string();
    let type_doc = doc(&input.attrs);
    let container = Serde::of(&input.attrs)?;
    let body = match &input.data {
        Data::Struct(data) => {
            let Fields::Named(named) = &data.fields else {
                return Err(syn::Error::new_spanned(
                    name,
                    "Explain: only structs with named fields",
                ));
            };
            let whole = container.default.is_some().then_some(name);
            let fields = fields(named.named.iter(), whole)?;
            quote! {
                ::explain::Shape::Struct(::explain::Struct {
                    name: #written,
                    doc: #type_doc,
                    fields: vec![#(#fields),*],
                })
            }
        }
        Data::Enum(data) => {
            let mut variants = Vec::new();
            for variant in &data.variants {
                let serde = Serde::of(&variant.attrs)?;
                if serde.skip {
                    continue;
                }
                let name = serde.rename.unwrap_or_else(|| variant.ident.to_string());
                let doc = doc(&variant.attrs);
                let fields = match &variant.fields {
                    Fields::Unit => quote!(::explain::VariantFields::Unit),
                    Fields::Unnamed(unnamed) => {
                        let shapes = unnamed.unnamed.iter().map(|f| {
                            let ty = &f.ty;
                            quote!(<#ty as ::explain::Explain>::shape)
                        });
                        quote!(::explain::VariantFields::Tuple(vec![#(#shapes),*]))
                    }
                    Fields::Named(named) => {
                        let fields = fields(named.named.iter(), None)?;
                        quote!(::explain::VariantFields::Struct(vec![#(#fields),*]))
                    }
                };
                variants.push(quote! {
                    ::explain::Variant { name: #name, doc: #doc, fields: #fields }
                });
            }
            quote! {
                ::explain::Shape::Enum(::explain::Enum {
                    name: #written,
                    doc: #type_doc,
                    variants: vec![#(#variants),*],
                })
            }
        }
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(name, "Explain: no unions"));
        }
    };
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::explain::Explain for #name #ty_generics #where_clause {
            fn shape() -> ::explain::Shape {
                #body
            }
        }
    })
}

/// The fields serde reads, each as an `explain::Field`. `whole`: the struct whose
/// `Default` gives every field's default (serde's container `default`).
fn fields<'a>(
    fields: impl Iterator<Item = &'a syn::Field>,
    whole: Option<&Ident>,
) -> syn::Result<Vec<Tokens>> {
    let mut out = Vec::new();
    for field in fields {
        let serde = Serde::of(&field.attrs)?;
        if serde.skip {
            continue;
        }
        let ident = field.ident.as_ref().expect("named fields");
        let name = serde.rename.unwrap_or_else(|| ident.to_string());
        let doc = doc(&field.attrs);
        let ty = &field.ty;
        let written = type_name(ty);
        let default = match (serde.default, whole) {
            (Some(DefaultFrom::Path(path)), _) => {
                quote!(Some(|| ::explain::ron(&#path())))
            }
            (Some(DefaultFrom::Trait), _) => {
                quote!(Some(|| ::explain::ron(&<#ty as ::core::default::Default>::default())))
            }
            (None, Some(whole)) => {
                quote!(Some(|| ::explain::ron(&<#whole as ::core::default::Default>::default().#ident)))
            }
            (None, None) => quote!(None),
        };
        out.push(quote! {
            ::explain::Field {
                name: #name,
                doc: #doc,
                ty: #written,
                shape: <#ty as ::explain::Explain>::shape,
                default: #default,
            }
        });
    }
    Ok(out)
}

/// The doc comment, one space after each `///` taken off, paragraphs kept.
fn doc(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_string()
        })
        .collect();
    lines.join("\n").trim().to_string()
}

/// A Rust type as a user reads it: `Option<LecamConfig>`, not `Option < LecamConfig >`.
fn type_name(ty: &Type) -> String {
    let text = quote!(#ty).to_string();
    let mut out = String::new();
    for token in text.split(' ') {
        let glue = matches!(token, "<" | ">" | "::" | "," | ";" | "]")
            || out.ends_with(['<', ':', '[', '&', '(']);
        if !out.is_empty() && !glue {
            out.push(' ');
        }
        out.push_str(token);
        if token == "," || token == ";" {
            out.push(' ');
        }
    }
    out
}

/// Where a field's default comes from.
enum DefaultFrom {
    Trait,
    Path(syn::Path),
}

/// The serde attributes that change what a user writes.
#[derive(Default)]
struct Serde {
    default: Option<DefaultFrom>,
    rename: Option<String>,
    skip: bool,
}

impl Serde {
    fn of(attrs: &[Attribute]) -> syn::Result<Serde> {
        let mut serde = Serde::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("default") {
                    serde.default = Some(match meta.value() {
                        Ok(value) => DefaultFrom::Path(value.parse::<LitStr>()?.parse()?),
                        Err(_) => DefaultFrom::Trait,
                    });
                } else if meta.path.is_ident("rename") {
                    serde.rename = Some(meta.value()?.parse::<LitStr>()?.value());
                } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_deserializing") {
                    serde.skip = true;
                } else if meta.input.peek(syn::Token![=]) {
                    // Other attributes with a value (skip_serializing_if = "…"): not
                    // about what a user writes.
                    meta.value()?.parse::<LitStr>()?;
                }
                Ok(())
            })?;
        }
        Ok(serde)
    }
}
